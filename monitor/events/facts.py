"""Facts an alert reports, read from an article's text: whether an official confirmed it, and how many were killed
or wounded. Pure: regular expressions over plain text."""

from __future__ import annotations

import re

__all__ = ["casualty_count", "official_confirmation"]

_CONFIRMATION = re.compile(
    r"\b(?:Pentagon|Department of (?:Defense|War)|Defen[cs]e (?:Department|Secretary)|CENTCOM|Central Command|"
    r"White House|State Department|National Security Council|Iraqi (?:government|military|prime minister|PM|"
    r"security media cell|joint operations command|foreign ministry)|Security Media Cell)\b"
    r"(?:\W+\w+){0,4}?\W+(?:confirmed|confirms|announced|announces|acknowledged|said|says|stated)\b",
    re.IGNORECASE,
)
_NUMBER_WORDS = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "dozen": 12,
    "dozens": 24,
    "fifteen": 15,
    "twenty": 20,
}
_CASUALTIES = re.compile(
    r"\b(\d{1,4}|" + "|".join(_NUMBER_WORDS) + r")\b(?:\W+\w+){0,5}?\W+(?:killed|dead|died|wounded|injured|hurt)\b",
    re.IGNORECASE,
)


def official_confirmation(text: str) -> bool:
    """Whether an official (US or Iraqi government, Pentagon, CENTCOM) is reported confirming or stating it."""
    return _CONFIRMATION.search(text) is not None


def casualty_count(text: str) -> int | None:
    """The largest casualty figure stated ("killed 25", "three US soldiers were wounded"), if any."""
    best: int | None = None
    for m in _CASUALTIES.finditer(text):
        raw = m.group(1).lower()
        value = _NUMBER_WORDS.get(raw) if not raw.isdigit() else int(raw)
        if value is not None and value < 2000 and (best is None or value > best):
            best = value
    return best
