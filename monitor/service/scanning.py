"""``monitor scan`` of big JSON Lines files on every core: the file's lines are cut into parts that forked worker
processes classify (``detection.scan``), and the parent writes their output in file order.

The output is the single-process one, byte for byte: each part's lines are the lines ``scan`` would write for them,
and an error (a line that is not JSON) is raised after the output of every line before it, as in one process.
Workers are forked once the pack is loaded, so they share it instead of loading it again; a file under
``PARALLEL_LINES`` lines, another format, or a platform without ``fork`` is scanned in this process. It is opt-in
(``--workers N``): on two cores shared with other work, passing the lines and the output between processes cost
about what the second core gained (``benchmarks/README.md``).
"""

from __future__ import annotations

import gc
import io
import multiprocessing
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from monitor.core.errors import MonitorError
from monitor.detection.matcher import Matcher
from monitor.detection.scan import scan_documents
from monitor.parsing.files import article_files, file_contents, file_documents, json_line_documents

__all__ = ["PARALLEL_LINES", "scan_files"]

PARALLEL_LINES = 4_000  # a smaller file is scanned in this process: forking would cost more than it saves
PART_LINES = 2_000  # lines per part handed to a worker

# What the workers classify with: set before they are forked, inherited by them (never pickled).
_JOB: tuple[Matcher, bool] | None = None


def scan_files(paths: list[Path], matcher: Matcher, *, out: TextIO, evidence: bool = False, workers: int = 1) -> int:
    """``detection.scan.scan`` with big JSON Lines files shared among ``workers`` processes; returns how many
    articles were read."""
    parallel = workers > 1 and "fork" in multiprocessing.get_all_start_methods()
    count = 0
    for file in article_files(paths):
        raw, suffix = file_contents(file)
        if suffix != ".jsonl":
            count += scan_documents(file_documents(file, raw, suffix), matcher, out=out, evidence=evidence)
            continue
        lines = raw.decode("utf-8-sig").splitlines()
        del raw
        if parallel and len(lines) >= PARALLEL_LINES:
            count += _in_workers(file, lines, matcher, out=out, evidence=evidence, workers=workers)
        else:
            count += scan_documents(json_line_documents(file, lines), matcher, out=out, evidence=evidence)
    return count


def _parts(file: Path, lines: list[str]) -> Iterator[tuple[Path, list[str], int]]:
    for start in range(0, len(lines), PART_LINES):
        yield file, lines[start : start + PART_LINES], start + 1


def _in_workers(file: Path, lines: list[str], matcher: Matcher, *, out: TextIO, evidence: bool, workers: int) -> int:
    global _JOB
    out.flush()  # a forked worker must not inherit (and write out again) what this process has buffered
    # What exists now (the pack, the file's lines) is left out of the garbage collector's passes, in the workers too,
    # so that their collections do not write to, and so copy, every page they share with this process.
    gc.freeze()
    _JOB = (matcher, evidence)
    count = 0
    try:
        with multiprocessing.get_context("fork").Pool(min(workers, -(-len(lines) // PART_LINES))) as pool:
            for text, read, error in pool.imap(_classify_part, _parts(file, lines)):
                out.write(text)
                count += read
                if error is not None:
                    out.flush()
                    raise MonitorError(error)
    finally:
        _JOB = None
        gc.unfreeze()
    out.flush()
    return count


def _classify_part(part: tuple[Path, list[str], int]) -> tuple[str, int, str | None]:
    """In a worker: the output of one part, how many articles it held, and the error that cut it short."""
    assert _JOB is not None
    matcher, evidence = _JOB
    file, lines, first = part
    buffer = io.StringIO()
    try:
        read = scan_documents(json_line_documents(file, lines, first), matcher, out=buffer, evidence=evidence)
    except MonitorError as exc:
        return buffer.getvalue(), 0, str(exc)
    return buffer.getvalue(), read, None
