"""``monitor scan`` as a user runs it, a whole process from start to exit, against a plain JSON reader.

Each variant is a separate process, so start-up (imports, configuration, the rule pack) is included:

* ``plain reader``: Python reading the same gz JSON Lines file with ``json.loads`` and nothing else (the baseline);
* ``scan, cached pack``: ``monitor scan`` with the compiled rule pack already in its cache folder;
* ``scan, compiling``: ``monitor scan`` with the cache off (``MONITOR_RULE_CACHE=off``), as on a first run;
* ``start-up``: ``monitor scan`` of a one-line file (cached pack) against ``python -c pass``.

Medians over ``--repeat`` interleaved rounds (one warm-up each), reported as ratios to the baseline of the same run.

    .venv/bin/python benchmarks/bench_command.py [--repeat 7] [--corpus FILE]
"""

from __future__ import annotations

import argparse
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


def _seconds(command: Sequence[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env=env, cwd=ROOT)
    return time.perf_counter() - start


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=7, help="rounds (median; default 7)")
    parser.add_argument("--corpus", type=Path, default=CORPUS, help="gz JSONL headline corpus")
    args = parser.parse_args(argv)
    if not args.corpus.exists():
        print(f"no corpus at {args.corpus}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        one = Path(tmp) / "one.jsonl"
        one.write_text('{"title": "Quiet day", "url": "https://a.test/1"}\n', encoding="utf-8")
        cached = {**os.environ, "MONITOR_CACHE_DIR": str(Path(tmp) / "cache"), "MONITOR_RULE_CACHE": "on"}
        cold = {**os.environ, "MONITOR_RULE_CACHE": "off"}
        variants = {
            "plain reader": ([sys.executable, "-c", READER, str(args.corpus)], cached),
            "scan, cached pack": ([str(MONITOR), "scan", str(args.corpus)], cached),
            "scan, compiling": ([str(MONITOR), "scan", str(args.corpus)], cold),
            "python -c pass": ([sys.executable, "-c", "pass"], cached),
            "start-up": ([str(MONITOR), "scan", str(one)], cached),
        }
        times: dict[str, list[float]] = {name: [] for name in variants}
        for command, env in variants.values():
            _seconds(command, env)  # warm-up (fills the cache for the cached variants)
        names = list(variants)
        for r in range(args.repeat):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                times[name].append(_seconds(*variants[name]))
    median = {name: statistics.median(values) for name, values in times.items()}
    print(f"{'variant':<20} {'median s':>9} {'ratio':>7}")
    for name in names:
        base = "python -c pass" if name == "start-up" else "plain reader"
        ratio = "" if name in ("plain reader", "python -c pass") else f"{median[name] / median[base]:.2f}x"
        print(f"{name:<20} {median[name]:>9.3f} {ratio:>7}")
    print(f"(rounds: {args.repeat}; ratios against the baseline of the same run)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
