"""``monitor scan`` as a user runs it, a whole process from start to exit, against a plain JSON reader.

Each variant is a separate process, so start-up (imports, configuration, the rule pack) is included:

* ``plain reader``: Python reading the same gz JSON Lines file with ``json.loads`` and nothing else (the baseline);
* ``scan, cached pack``: ``monitor scan --workers 1`` with the compiled rule pack already in its cache folder (one
  process);
* ``scan --workers 2``: the same shared between two worker processes (``auto``, the default, on two cores);
* ``scan, compiling``: ``monitor scan`` with the cache off (``MONITOR_RULE_CACHE=off``), as on a first run;
* ``start-up``: ``monitor scan`` of a one-line file (cached pack) against ``python -c pass``.

Then the same on a big file, ``--big`` headlines (300,000 by default) made at run time in a temporary folder by
repeating the corpus with an ``id`` per copy (``r3-1234``), so no two lines are the same: the plain reader, ``scan``
(``--workers 1``) and ``scan --workers 2``, with headlines per second. "before" runs that version's ``scan`` the same
two ways (it must know ``--workers``).

With ``--before DIR`` (an export of an earlier commit, e.g. ``git archive REV | tar -x -C DIR``), that version's
``monitor scan`` (``python -m monitor`` with ``PYTHONPATH=DIR``) runs in the same rounds, for a before/after.

Medians over interleaved rounds (one warm-up each), reported as ratios to the baseline of the same run.

    .venv/bin/python benchmarks/bench_command.py [--repeat 7] [--big 300000] [--big-repeat 3] [--corpus FILE]
        [--before DIR]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus" / "news" / "news_category_dataset.jsonl.gz"
MONITOR = Path(sys.executable).with_name("monitor")
READER = "import gzip, json, sys\nfor line in gzip.open(sys.argv[1], 'rt', encoding='utf-8'): json.loads(line)"

Variants = dict[str, tuple[list[str], dict[str, str]]]


def _seconds(command: Sequence[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    # An earlier version runs from its own tree (``python -m`` puts the working folder first on the path).
    cwd = env.get("PYTHONPATH") or ROOT
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env=env, cwd=cwd)
    return time.perf_counter() - start


def _rounds(variants: Variants, repeat: int) -> dict[str, float]:
    """Median seconds of each variant: one warm-up each, then ``repeat`` rounds in an order rotated each round."""
    times: dict[str, list[float]] = {name: [] for name in variants}
    for command, env in variants.values():
        _seconds(command, env)  # warm-up (fills the cache for the cached variants)
    names = list(variants)
    for r in range(repeat):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            times[name].append(_seconds(*variants[name]))
    return {name: statistics.median(values) for name, values in times.items()}


def big_corpus(corpus: Path, target: Path, headlines: int) -> int:
    """Write ``headlines`` lines to ``target`` (gz JSON Lines): the corpus repeated, each copy's lines with ids of
    their own. Returns how many lines were written."""
    with gzip.open(corpus, "rt", encoding="utf-8") as source:
        lines = [json.loads(line) for line in source if line.strip()]
    written = 0
    with gzip.open(target, "wt", encoding="utf-8", compresslevel=1) as out:
        copy = 0
        while written < headlines:
            for i, obj in enumerate(lines[: headlines - written]):
                out.write(json.dumps({"id": f"r{copy}-{i}", **obj}, ensure_ascii=False) + "\n")
            written += min(len(lines), headlines - written)
            copy += 1
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=7, help="rounds on the corpus (median; default 7)")
    parser.add_argument("--big", type=int, default=300_000, help="headlines in the big file (0: skip it)")
    parser.add_argument("--big-repeat", type=int, default=3, help="rounds on the big file (median; default 3)")
    parser.add_argument("--corpus", type=Path, default=CORPUS, help="gz JSONL headline corpus")
    parser.add_argument("--before", type=Path, help="an earlier version's source tree, run in the same rounds")
    args = parser.parse_args(argv)
    if not args.corpus.exists():
        print(f"no corpus at {args.corpus}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        one = Path(tmp) / "one.jsonl"
        one.write_text('{"title": "Quiet day", "url": "https://a.test/1"}\n', encoding="utf-8")
        # As a user runs it: the warm-up writes the bytecode caches that later rounds read (a shell that turns them
        # off would have every round compile the modules it imports again).
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        cached = {**env, "MONITOR_CACHE_DIR": str(Path(tmp) / "cache"), "MONITOR_RULE_CACHE": "on"}
        cold = {**env, "MONITOR_RULE_CACHE": "off"}
        corpus = str(args.corpus)
        variants: Variants = {
            "plain reader": ([sys.executable, "-c", READER, corpus], cached),
            "scan, cached pack": ([str(MONITOR), "scan", "--workers", "1", corpus], cached),
            "scan --workers 2": ([str(MONITOR), "scan", "--workers", "2", corpus], cached),
            "scan, compiling": ([str(MONITOR), "scan", "--workers", "1", corpus], cold),
            "python -c pass": ([sys.executable, "-c", "pass"], cached),
            "start-up": ([str(MONITOR), "scan", str(one)], cached),
        }
        before = {**cached, "PYTHONPATH": str(args.before.resolve())} if args.before else None
        if before is not None:
            variants["before: scan"] = ([sys.executable, "-m", "monitor", "scan", "--workers", "1", corpus], before)
            variants["before: --workers 2"] = (
                [sys.executable, "-m", "monitor", "scan", "--workers", "2", corpus],
                before,
            )
            variants["before: start-up"] = ([sys.executable, "-m", "monitor", "scan", str(one)], before)
        median = _rounds(variants, args.repeat)
        print(f"{'variant':<20} {'median s':>9} {'ratio':>7}")
        for name in variants:
            base = "python -c pass" if name.endswith("start-up") else "plain reader"
            ratio = "" if name in ("plain reader", "python -c pass") else f"{median[name] / median[base]:.2f}x"
            print(f"{name:<20} {median[name]:>9.3f} {ratio:>7}")
        print(f"(rounds: {args.repeat}; ratios against the baseline of the same run)")
        if args.big:
            big = Path(tmp) / "big.jsonl.gz"
            count = big_corpus(args.corpus, big, args.big)
            variants = {
                "plain reader": ([sys.executable, "-c", READER, str(big)], cached),
                "scan": ([str(MONITOR), "scan", "--workers", "1", str(big)], cached),
                "scan --workers 2": ([str(MONITOR), "scan", "--workers", "2", str(big)], cached),
            }
            if before is not None:
                for workers in ("1", "2"):
                    name = "before: scan" if workers == "1" else "before: --workers 2"
                    variants[name] = ([sys.executable, "-m", "monitor", "scan", "--workers", workers, str(big)], before)
            median = _rounds(variants, args.big_repeat)
            print(f"\n{count:,} headlines")
            print(f"{'variant':<20} {'median s':>9} {'ratio':>7} {'headlines/s':>12}")
            for name in variants:
                ratio = "" if name == "plain reader" else f"{median[name] / median['plain reader']:.2f}x"
                print(f"{name:<20} {median[name]:>9.3f} {ratio:>7} {count / median[name]:>12,.0f}")
            print(f"(rounds: {args.big_repeat}; {os.cpu_count()} cores)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
