"""The language of an article, told offline from its text: English, Arabic, Persian or Sorani Kurdish.

The monitor reads four languages, and three of them share a script, so the script alone is not enough; but each
has letters and small words the others lack, which is: Sorani's ``ە ێ ۆ ڵ ڕ`` (its vowel ``ە`` is in most words),
Arabic's ``ة``, ``ي`` and ``ك`` against Persian's ``ی``/``ک`` and ``پ چ ژ گ``, and each language's commonest
function words. Counting them decides, in microseconds and without a model to ship. Pure.
"""

from __future__ import annotations

import re
import unicodedata

from monitor.core.models import Article
from monitor.detection.condition import presence_test
from monitor.detection.rulefile import Filter, Rule
from monitor.detection.scripts import sorani_spelling

__all__ = ["ARABIC_SCRIPT_LANGUAGES", "LANGUAGES", "article_language", "detect_language", "needs_arabic_script"]

#: The languages the rule pack is written in (ISO 639: ``ckb`` is Central Kurdish, i.e. Sorani).
LANGUAGES = ("en", "ar", "fa", "ckb")
ARABIC_SCRIPT_LANGUAGES = frozenset({"ar", "fa", "ckb"})

_ARABIC_SCRIPT = re.compile("[\u0621-\u064a\u0671-\u06d5\u06ee\u06ef\u06fa-\u06ff]")
_LATIN = re.compile("[A-Za-z]")
_SORANI = re.compile("[\u06d5\u06ce\u06c6\u06b5\u0695\u06a4]")
_ARABIC_ONLY = re.compile("[\u0629\u064a\u0643\u0649]")
_PERSIAN_ONLY = re.compile("[\u067e\u0686\u0698\u06af\u06cc\u06a9]")
_WORD = re.compile("[\u0600-\u06ff]+")
# Presentation forms and ligatures ("﷽" alone opens many posts): read as the letters they stand for.
_PRESENTATION = re.compile("[\ufb50-\ufdff\ufe70-\ufeff]")
_BASMALA = "بسم الله الرحمن الرحيم"  # what the one-character ligature U+FDFD stands for
_STOP_WORDS = {
    "ar": frozenset(
        {
            "في",
            "من",
            "على",
            "الى",
            "إلى",
            "عن",
            "التي",
            "الذي",
            "هذا",
            "هذه",
            "مع",
            "بعد",
            "قد",
            "كان",
            "لم",
            "أن",
            "إن",
        }
    ),
    "fa": frozenset(
        {
            "است",
            "در",
            "شدند",
            "هم",
            "را",
            "این",
            "که",
            "از",
            "به",
            "با",
            "برای",
            "می",
            "شد",
            "شده",
            "کرد",
            "های",
            "نیز",
            "آن",
        }
    ),
    "ckb": frozenset({"لە", "بە", "کە", "بۆ", "ئەم", "ئەو", "دەکات", "کرد", "بوو", "لەگەڵ"}),
}
_SORANI_NOT_E = re.compile("[\u06ce\u06c6\u06b5\u0695\u06a4]")
_SORANI_KEYBOARD = str.maketrans({"\u0643": "\u06a9", "\u064a": "\u06cc", "\u200c": ""})
_SAMPLE = 4000  # characters: enough to decide, and the cost stays flat for long articles


def detect_language(*texts: str) -> str | None:
    """``en``, ``ar``, ``fa`` or ``ckb``, or None when the text has no letters to tell by."""
    text = " ".join(t[:_SAMPLE] for t in texts if t)
    if text.isascii():
        return "en" if _LATIN.search(text) else None
    if _PRESENTATION.search(text):  # (they stand for Arabic letters: the text stays non-ASCII)
        text = unicodedata.normalize("NFKC", text.replace("\ufdfd", _BASMALA))
    arabic = len(_ARABIC_SCRIPT.findall(text))
    if arabic == 0:
        return "en" if _LATIN.search(text) else None
    if arabic < len(_LATIN.findall(text)) // 2:
        return "en"  # an English story quoting a name in Arabic script
    words = _WORD.findall(text)
    score = {lang: sum(1 for w in words if w in stops) for lang, stops in _STOP_WORDS.items()}
    if _legacy_sorani(text, arabic, score["ar"] + score["fa"]):
        return "ckb"
    score["ckb"] += 3 * len(_SORANI.findall(text))
    score["ar"] += len(_ARABIC_ONLY.findall(text))
    persian_letters = len(_PERSIAN_ONLY.findall(text))
    score["fa"] += persian_letters
    if score["ckb"] * 40 < arabic:
        score["ckb"] = 0  # a stray Sorani letter in a name does not make Arabic or Persian text Kurdish
    else:
        score["ckb"] += persian_letters  # Sorani writes them too: they tell Persian from Arabic only
    return max(("ar", "fa", "ckb"), key=lambda lang: score[lang])


def _legacy_sorani(text: str, letters: int, other_stop_words: int) -> bool:
    """Whether ``text`` is Sorani typed on an Arabic keyboard (ه for ە, Arabic ك ي), which the letter counts would
    call Arabic: its stop words, once respelled, and its letters other than ە outweigh the Arabic or Persian
    stop words (ە is left out: respelling makes one of every Arabic word ending in ه)."""
    respelled = sorani_spelling(text)
    if respelled == text:
        return False
    words = _WORD.findall(respelled.translate(_SORANI_KEYBOARD))
    evidence = sum(1 for w in words if w in _STOP_WORDS["ckb"]) + 3 * len(_SORANI_NOT_E.findall(text))
    evidence += 3 * text.count("\u0626\u0647\u200c")  # ئه‌: Sorani's ئە, never Persian
    evidence += 3 * text.count("\u0647\u200c\u0643")  # ه‌ك: Sorani's ەک on an Arabic keyboard (Persian types ک)
    return evidence * 40 >= letters and evidence > 2 * other_stop_words


def article_language(article: Article) -> str | None:
    """The article's language: told from its text when that is in Arabic script (feeds mislabel, and Telegram
    posts have no label), else the feed's own label (primary subtag), else told from the text."""
    detected = detect_language(article.title, article.summary, article.content)
    if detected in ("ar", "fa", "ckb"):
        return detected
    if article.language:
        primary = article.language.split("-")[0].split("_")[0].strip().lower()
        if primary:
            return primary
    return detected


def needs_arabic_script(rule: Rule | Filter) -> bool:
    """Whether ``rule`` can fire only on Arabic-script text: it is restricted to those languages, or its condition
    cannot hold without selections that are."""
    if isinstance(rule, Rule) and rule.languages is not None and rule.languages <= ARABIC_SCRIPT_LANGUAGES:
        return True
    latin = {n for n, s in rule.selections.items() if s.languages is None or s.languages - ARABIC_SCRIPT_LANGUAGES}
    return not presence_test(rule.condition)(latin)
