"""``monitor scan`` of big JSON Lines files on every core: the file is cut into parts of whole lines that forked
worker processes decode and classify (``detection.scan``), and the parent writes their output in file order. The
workers read their parts from the file's bytes that they share with the parent: only where a part starts and
ends, and the number of its first line, is sent to them.

The output is the single-process one, byte for byte: each part's lines are the lines ``scan`` would write for them,
numbered as ``str.splitlines`` of the whole file numbers them (a part whose lines are not the ones its line feeds end
is read, with the rest of the file, in this process); an error (a line that is not JSON) is raised after the output
of every line before it, and a file that is not UTF-8 fails before any output, as in one process. Workers are forked
once the pack is loaded, so they share it instead of loading it again; a file under ``PARALLEL_LINES`` lines,
another format, or a platform without ``fork`` is scanned in this process. ``--workers`` is one per core unless
told (``benchmarks/README.md``: on this project's two shared cores, two workers were 1.6 times as fast as one process
on a 300,000-line file when the second core was free, and about as fast when other work kept it busy).
"""

from __future__ import annotations

import codecs
import gc
import io
from pathlib import Path
from typing import TextIO

from monitor.core.errors import MonitorError
from monitor.detection.matcher import Matcher
from monitor.detection.scan import scan_documents
from monitor.parsing.files import article_files, file_contents, file_documents, json_line_documents

__all__ = ["PARALLEL_LINES", "scan_files"]

PARALLEL_LINES = 4_000  # a smaller file is scanned in this process: forking would cost more than it saves
PART_BYTES = 1 << 20  # about what a worker is handed at a time (whole lines: a part ends after a line feed)

# What the workers classify with: set before they are forked, inherited by them (never pickled), with the file's
# bytes, which they read their parts from.
_JOB: tuple[Matcher, bool, Path, bytes] | None = None


def scan_files(paths: list[Path], matcher: Matcher, *, out: TextIO, evidence: bool = False, workers: int = 1) -> int:
    """``detection.scan.scan`` with big JSON Lines files shared among ``workers`` processes; returns how many
    articles were read."""
    count = 0
    for file in article_files(paths):
        raw, suffix = file_contents(file)
        if suffix != ".jsonl":
            count += scan_documents(file_documents(file, raw, suffix), matcher, out=out, evidence=evidence)
            continue
        parts = _parts(raw) if workers > 1 else None
        if parts is not None and not _can_fork():
            parts = None
        if parts is not None:
            count += _in_workers(file, raw, parts, matcher, out=out, evidence=evidence, workers=workers)
            continue
        lines = raw.decode("utf-8-sig").splitlines()
        del raw
        count += scan_documents(json_line_documents(file, lines), matcher, out=out, evidence=evidence)
    return count


def _can_fork() -> bool:
    import multiprocessing  # imported only for a file that workers share: a small scan starts without it

    return "fork" in multiprocessing.get_all_start_methods()


def _parts(raw: bytes) -> list[tuple[int, int, int]] | None:
    """The file cut into parts of whole lines: each part's start and end in ``raw`` and the number of its first
    line, counting line feeds (``None`` for a file under ``PARALLEL_LINES`` lines: it is read in this process).
    ``str.splitlines``, which numbers the lines, may also break at other characters: a worker that finds such a
    break says so, and the file is read from there in this process (``_in_workers``)."""
    if raw.count(b"\n") < PARALLEL_LINES:
        return None
    start = len(codecs.BOM_UTF8) if raw.startswith(codecs.BOM_UTF8) else 0
    parts, first = [], 1
    while start < len(raw):
        cut = raw.find(b"\n", start + PART_BYTES)
        end = len(raw) if cut < 0 else cut + 1
        parts.append((start, end, first))
        first += raw.count(b"\n", start, end)
        start = end
    return parts


def _in_workers(
    file: Path,
    raw: bytes,
    parts: list[tuple[int, int, int]],
    matcher: Matcher,
    *,
    out: TextIO,
    evidence: bool,
    workers: int,
) -> int:
    global _JOB
    import multiprocessing

    # A file that is not UTF-8 fails before any output, and before any worker starts: raised while the workers
    # were busy, the error left the pool's terminate() to race with them, and now and then it never returned.
    if not raw.isascii():
        raw.decode("utf-8-sig")
    out.flush()  # a forked worker must not inherit (and write out again) what this process has buffered
    # What exists now (the pack, the file's bytes) is left out of the garbage collector's passes, in the workers too,
    # so that their collections do not write to, and so copy, every page they share with this process.
    gc.freeze()
    _JOB = (matcher, evidence, file, raw)
    count, rest = 0, None
    try:
        with multiprocessing.get_context("fork").Pool(min(workers, len(parts))) as pool:
            results = pool.imap(_classify_part, parts)
            for part, (text, read, error) in zip(parts, results, strict=True):
                if text is None:  # another line break than a line feed: the numbers from here on are not known
                    rest = part
                    break
                out.write(text)
                count += read
                if error is not None:
                    out.flush()
                    raise MonitorError(error)
    finally:
        _JOB = None
        gc.unfreeze()
    if rest is not None:
        lines = str(memoryview(raw)[rest[0] :], "utf-8").splitlines()
        count += scan_documents(json_line_documents(file, lines, rest[2]), matcher, out=out, evidence=evidence)
    out.flush()
    return count


def _classify_part(part: tuple[int, int, int]) -> tuple[str | None, int, str | None]:
    """In a worker: the output of one part, how many articles it held, and the error that cut it short; no output
    when its lines are not the ones its line feeds end (``_parts``)."""
    assert _JOB is not None
    matcher, evidence, file, raw = _JOB
    start, end, first = part
    lines = str(memoryview(raw)[start:end], "utf-8").splitlines()
    if len(lines) != raw.count(b"\n", start, end) + (raw[end - 1] != 10):
        return None, 0, None
    buffer = io.StringIO()
    try:
        read = scan_documents(json_line_documents(file, lines, first), matcher, out=buffer, evidence=evidence)
    except MonitorError as exc:
        return buffer.getvalue(), 0, str(exc)
    return buffer.getvalue(), read, None
