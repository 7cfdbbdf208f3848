"""Which real feeds of the shared corpus the lxml fast path declines (leaving them to feedparser), and why.

Every captured feed of ``../shared/corpus/feeds`` (not feedparser's own test cases) is offered to
``monitor.parsing.fastpath`` as ``application/xml``, prepared as ``parse_feed`` prepares it. A declined one is
counted under the check that declined it, shown as that check's source line, and, for the check on an item's
elements, under the element's name.

    .venv/bin/python benchmarks/fastpath_declines.py
"""

from __future__ import annotations

import collections
import csv
import gzip
import sys
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CORPUS = ROOT.parent / "shared" / "corpus" / "feeds"


def main() -> None:
    from monitor.parsing import fastpath
    from monitor.parsing.feed import _declaration_first

    elements: collections.Counter[str] = collections.Counter()
    harmless = fastpath._harmless

    def counting(element: Any, title_locked: bool) -> bool:
        ok = harmless(element, title_locked)
        if not ok:
            elements[fastpath._key(element)] += 1
        return ok

    fastpath._harmless = counting  # type: ignore[assignment]  # counts the elements that make an item decline
    with (CORPUS / "MANIFEST.tsv").open() as manifest:
        rows = [r for r in csv.DictReader(manifest, delimiter="\t") if r["group"] != "kurtmckee-feedparser"]
    checks: collections.Counter[str] = collections.Counter()
    examples: dict[str, list[str]] = collections.defaultdict(list)
    answered = total = 0
    for row in rows:
        path = CORPUS / row["group"] / row["file"]
        if not path.is_file():
            continue
        body = path.read_bytes()
        body = gzip.decompress(body) if body[:2] == b"\x1f\x8b" else body
        body = _declaration_first(body)  # as parse_feed prepares it
        total += 1
        try:
            fastpath._parse(body, {"content-type": "application/xml"})
            answered += 1
        except fastpath._Decline as exc:
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            check = f"line {frame.lineno}: {(frame.line or '').strip()}"
            checks[check] += 1
            examples[check].append(f"{row['format']} {row['file']}")
    print(f"{answered} of {total} captured feeds answered by the fast path")
    for check, count in checks.most_common():
        print(f"{count:4d}  {check[:110]}\n      e.g. {', '.join(examples[check][:3])}")
    print("elements that made an item decline:", ", ".join(f"{k} {n}" for k, n in elements.most_common()))


if __name__ == "__main__":
    main()
