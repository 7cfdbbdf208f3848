"""Scan throughput and matcher scaling, measured on demand (never part of the test suite).

1. ``monitor scan`` over the real headline corpus against the cost of merely reading it with the same reader
   (``monitor.parsing.files.read_articles``): the ratio of medians says what the matcher and the JSON output add.
2. ``Matcher.match`` per article as the pack grows from 200 to 20,000 phrases: synthetic packs (made-up words,
   one entity file and rules that also use real entities) loaded with the real pack through ``load_rules``.

The machine this runs on is small and noisy, so every figure is a median over ``--repeat`` runs, the runs of the
things compared are interleaved, and results are ratios against a baseline measured in the same run.

    .venv/bin/python benchmarks/bench_scan.py [--repeat 5] [--quick] [--corpus FILE] [--rules DIR]
"""

from __future__ import annotations

import argparse
import io
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

from monitor.detection.matcher import Matcher
from monitor.detection.rulefile import load_rules
from monitor.detection.scan import scan
from monitor.detection.text import normalize
from monitor.parsing.files import read_articles

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus" / "news" / "news_category_dataset.jsonl.gz"
RULES = ROOT / "rules"
PACK_SIZES = (200, 1_000, 5_000, 20_000)
QUICK_PACK_SIZES = (200, 2_000, 20_000)
PHRASES_PER_RULE = 50
ENTITY_SHARE = 0.2  # of the synthetic phrases, the share that are entity names rather than rule keywords
NAMES_PER_ENTITY = 10
_SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]


def _timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def _interleaved(actions: dict[str, Callable[[], object]], rounds: int) -> dict[str, list[float]]:
    """Seconds of each action in each round: one warm-up each, then ``rounds`` rounds that run every action
    once, in an order rotated each round, so a burst of load from the other core hits all of them alike."""
    for action in actions.values():
        action()
    names = list(actions)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            times[name].append(_timed(actions[name]))
    return times


def _paired_ratio(times: dict[str, list[float]], name: str, base: str) -> float:
    """Median over rounds of ``name``'s time over ``base``'s in the same round: steadier than a ratio of
    medians when the load changes between rounds."""
    return statistics.median(t / b for t, b in zip(times[name], times[base], strict=True))


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(lines)


def bench_throughput(corpus: Path, rules: Path, repeat: int) -> None:
    ruleset = load_rules([rules])
    articles = sum(1 for _ in read_articles([corpus]))
    sink = io.StringIO()

    def read() -> None:
        for _ in read_articles([corpus]):
            pass

    def full_scan() -> None:
        sink.seek(0)
        sink.truncate()
        scan([corpus], Matcher(ruleset, min_severity=3), out=sink)  # builds the matcher each time, as a first run does

    build = statistics.median(_timed(lambda: Matcher(ruleset)) for _ in range(repeat))
    times = _interleaved({"read": read, "scan": full_scan}, repeat)
    medians = {name: statistics.median(values) for name, values in times.items()}
    matched = sum(json.loads(line)["matched"] for line in sink.getvalue().splitlines())
    read_s, scan_s = medians["read"], medians["scan"]
    rows = [
        [name, f"{sec:.3f}", f"{sec / articles * 1e6:.1f}", f"{articles / sec:,.0f}", f"{sec / read_s:.2f}"]
        for name, sec in (("read", read_s), ("scan", scan_s))
    ]
    rows.append(["scan - read", f"{scan_s - read_s:.3f}", f"{(scan_s - read_s) / articles * 1e6:.1f}", "", ""])
    print(f"1. scan throughput: {corpus.name}, {articles} articles, {len(ruleset.rules)} rules, median of {repeat}")
    print(_table(["stage", "seconds", "us/article", "articles/s", "x read"], rows))
    print(
        f"ratio of medians {scan_s / read_s:.2f}, median of per-round ratios {_paired_ratio(times, 'scan', 'read'):.2f}"
    )
    print(f"matched (would alert): {matched} of {articles}; building the matcher: {build * 1000:.0f} ms\n")


def _word(rng: random.Random, vocabulary: set[str]) -> str:
    while True:
        word = "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4)))
        if word not in vocabulary:  # "made up" must hold: "time" or "sale" would hit real headlines
            return word


def _synthetic_pack(phrases: int, folder: Path, seed: int, vocabulary: set[str]) -> Path:
    """A YAML file with ``phrases`` made-up phrases: entity names, and keywords of rules that also need a real
    Iraq place (so every article naming Baghdad feeds every synthetic rule's condition, as in a real pack)."""
    rng = random.Random(seed)
    seen: set[str] = set()

    def phrase() -> str:
        while True:
            text = " ".join(_word(rng, vocabulary) for _ in range(rng.randint(1, 3)))
            if text not in seen:
                seen.add(text)
                return text

    names = int(phrases * ENTITY_SHARE)
    entities = [
        {
            "id": f"synth_entity_{i}",
            "type": "organisation",
            "names": [phrase() for _ in range(min(NAMES_PER_ENTITY, names - i * NAMES_PER_ENTITY))],
        }
        for i in range(-(-names // NAMES_PER_ENTITY))
    ]
    keywords = [phrase() for _ in range(phrases - names)]
    docs: list[object] = [{"entities": entities}]
    for i in range(0, len(keywords), PHRASES_PER_RULE):
        n = i // PHRASES_PER_RULE
        docs.append(
            {
                "title": f"Synthetic rule {n}",
                "id": f"synth-{n}",
                "status": "stable",
                "description": "Detects nothing real: a benchmark filler rule.",
                "tags": [f"event.synthetic_{n % 7}"],
                "level": "medium",
                "detection": {
                    "terms": {"keywords": keywords[i : i + PHRASES_PER_RULE]},
                    "actor": {"entities": [entities[n % len(entities)]["id"]] if entities else ["united_states"]},
                    "place": {"entities": ["iraq", "baghdad"]},
                    "condition": "sentence(terms, place) or (actor and place)",
                },
                "falsepositives": ["none: made-up words"],
            }
        )
    path = folder / f"synthetic_{phrases}.yaml"
    # JSON is YAML; one document per "---".
    path.write_text("\n---\n".join(json.dumps(d) for d in docs) + "\n", encoding="utf-8")
    return path


def bench_scaling(corpus: Path, rules: Path, repeat: int, sizes: Sequence[int], sample: int) -> None:
    articles = list(read_articles([corpus]))
    step = max(1, len(articles) // sample)
    headlines = [(a.title, a.summary) for a in articles[::step][:sample]]
    vocabulary = {w for a in articles for field in (a.title, a.summary) for w in normalize(field).split()}
    with tempfile.TemporaryDirectory(prefix="bench-pack-") as tmp:
        matchers: dict[int, Matcher] = {}
        builds: dict[int, float] = {}
        for size in sizes:
            ruleset = load_rules([rules, _synthetic_pack(size, Path(tmp), seed=size, vocabulary=vocabulary)])
            matchers[size] = Matcher(ruleset)
            builds[size] = statistics.median(_timed(partial(Matcher, ruleset)) for _ in range(repeat))

    def run(matcher: Matcher) -> Callable[[], object]:
        return lambda: [matcher.match(title, summary) for title, summary in headlines]

    # A round here is short (a fraction of a second), so take more of them than the throughput test does.
    rounds = 3 * repeat
    times = _interleaved({str(size): run(m) for size, m in matchers.items()}, rounds)
    base = str(sizes[0])
    rows = []
    for size in sizes:
        sec, matcher = statistics.median(times[str(size)]), matchers[size]
        per_article = f"{sec / len(headlines) * 1e6:.1f}"
        build = f"{builds[size] * 1000:.0f}"
        ratio = f"{_paired_ratio(times, str(size), base):.2f}"
        rows.append([f"{size:,}", f"{matcher.phrase_count:,}", str(len(matcher.rules)), build, per_article, ratio])
    print(
        f"2. matching cost as the pack grows: {len(headlines)} headlines (title + summary), the real pack plus "
        f"N synthetic phrases, median of {rounds} rounds"
    )
    print(_table(["phrases", "patterns", "rules", "build ms", "us/article", f"x {sizes[0]}"], rows))
    print(f"(x {sizes[0]}: median over rounds of the time over the {sizes[0]}-phrase pack's time in the same round)")
    print("(patterns: every normalised keyword form and entity name the automaton holds, real pack included)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, help="timed runs per measurement (median; default 5, quick 3)")
    parser.add_argument("--quick", action="store_true", help="fewer runs, pack sizes and headlines")
    parser.add_argument("--corpus", type=Path, default=CORPUS, help="gz JSONL headline corpus")
    parser.add_argument("--rules", type=Path, default=RULES, help="the real rule pack")
    args = parser.parse_args(argv)
    if not args.corpus.is_file():
        print(f"bench_scan: {args.corpus} not found (pass --corpus)", file=sys.stderr)
        return 2
    repeat = args.repeat if args.repeat is not None else 3 if args.quick else 5
    if repeat < 1:
        parser.error("--repeat must be at least 1")
    sizes = QUICK_PACK_SIZES if args.quick else PACK_SIZES
    print(f"python {sys.version.split()[0]}, repeat {repeat}{', quick' if args.quick else ''}\n")
    bench_throughput(args.corpus, args.rules, repeat)
    bench_scaling(args.corpus, args.rules, repeat, sizes, sample=500 if args.quick else 4000)
    return 0


if __name__ == "__main__":
    sys.exit(main())
