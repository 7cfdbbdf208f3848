"""What a report says was fired: rockets or missiles, drones, or roadside bombs, read from the headline and the lead
in the normal form of ``monitor.detection.text``.

Two attacks on one base a day apart are told apart by little else: the wires reuse one sentence for every attack
on Ain al-Asad, but "rockets" one night and "drones" the next are two attacks. Rockets, mortars and missiles are one
kind here, because reports of one barrage call it either (Arabic has one word for both), as are the bare "bomb"
words of a drone dropping explosives and a roadside bomb, which are told apart by their own words.

Pure and small: one regular expression per kind, over the headline and the lead without the words that name the
cause of the news ("a day after rocket fire").
"""

from __future__ import annotations

import functools
import re

from monitor.detection.hits import ArticleText, lead_end, news_text

__all__ = ["KINDS", "weapons_named"]

_LATIN = {
    "projectile": r"rockets?|katyushas?|mortars?|missiles?|ballistic|projectiles?|shelling|shelled|salvos?|barrages?",
    "drone": r"drones?|uavs?|uas|unmanned|quadcopters?|one way attack",
    "bomb": r"ieds?|roadside bombs?|explosive devices?|road side bombs?",
}
# The normal form folds Arabic-script letters (ي and ى read ی, ة reads ه, no article).
_ARABIC_SCRIPT = {
    "projectile": r"صاروخ\S*|صواریخ\S*|کاتیوشا\S*|هاون\S*|قذیفه|قذایف|موشک\S*|راکت\S*|خمپاره\S*|مووشەک\S*|"
    r"ڕۆکێت\S*|هاوەن\S*",
    # (not the Persian درون, "inside")
    "drone": r"مسیره|مسیرات|پهپاد\S*|درۆن\S*|طایره مسیره|طایرات مسیره|فڕۆکەی بێفڕۆکەوان",
    "bomb": r"عبوه ناسفه|عبوات ناسفه|بمب کنار جاده|بۆمبی",
}
KINDS = tuple(_LATIN)


@functools.cache
def _patterns() -> tuple[tuple[str, re.Pattern[str]], ...]:
    return tuple(
        (kind, re.compile(rf"(?<![^\s|])(?:{_LATIN[kind]}|{_ARABIC_SCRIPT[kind]})(?![^\s|,.:;!?])")) for kind in KINDS
    )


def weapons_named(text: ArticleText, *, with_cause: bool = False) -> tuple[str, ...]:
    """The kinds of weapon (``KINDS``) the headline and the lead say were used, not counting those that name the
    cause of the news ("drones hit Al-Asad a day after rocket fire": drones), unless ``with_cause`` (a headline
    that reports what followed its story: "launcher found after rocket on Victory base"). (Weapons named as the
    cause do not say the report is about another attack: "no injuries after drone attack" is about the drone
    attack.)"""
    end = lead_end(text)
    news = text.text[:end] if with_cause else news_text(text, end)
    return tuple(kind for kind, pattern in _patterns() if pattern.search(news))
