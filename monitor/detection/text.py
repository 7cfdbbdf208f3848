"""Text normalisation shared by the rule compiler and the matcher, so phrases and articles meet halfway.

The normal form is lower-case ASCII words separated by single spaces, with ``|`` standing for a sentence (or
field) break and one space padding each end: ``" usa strike kills kataib hezbollah commander | ... "``.
Padding lets a phrase compiled as ``" air strike "`` match only whole words without a boundary check, and
since no phrase contains ``|`` no match can cross a sentence. Folding rules:

* diacritics dropped (``Sulaymānī`` -> ``sulaymani``), typographic quotes and dashes unified;
* an upper-case ``US``/``U.S.``/``U.S.A.``/``USA`` becomes the token ``usa``, so the country never collides
  with the pronoun "us";
* other dotted acronyms lose their dots (``U.N.`` -> ``un``); abbreviations such as ``Gen.`` or ``Jan.`` do
  not end a sentence;
* the possessive ``'s`` is dropped and other apostrophes join (``Kata'ib`` -> ``kataib``);
* any other run of non-alphanumeric characters is one space (``al-Asad`` -> ``al asad``);
* Arabic-script text (Arabic, Persian, Sorani) keeps its letters, folded by ``detection.scripts``; ``~`` after
  an Arabic-script word adds that script's common suffixes (``scripts.arabic_forms``), ``^`` before an Arabic verb
  its persons and tenses (``scripts.arabic_verb_forms``).
"""

from __future__ import annotations

import re
import unicodedata

from monitor.detection.scripts import (
    arabic_forms,
    arabic_verb_forms,
    arabic_words,
    fold_arabic,
    has_arabic,
    sorani_spelling,
)

__all__ = ["SENTENCE_BREAK", "inflections", "normalize", "normalize_fields", "plain_words", "without_blog_label"]

SENTENCE_BREAK = "|"

# A live blog's label before its line: "LIVE:", "Israel-Gaza war live:", "Middle East crisis - live updates |". It
# names the blog, not the story ("Israel-Gaza war live: drones hit bases hosting US forces in Iraq").
_BLOG_LABEL = re.compile(
    r"^\s*(?:[^\W\d][\w'\u2019.\-]*\s+){0,5}?(?:[-\u2013\u2014]\s*)?(?:live|as it happened)"
    r"(?:\s+(?:updates?|blog|coverage|news))?\s*[:|\u2013\u2014]\s+(?=\S)",
    re.IGNORECASE,
)

# Typographic quotes become an apostrophe, dashes and the no-break space a space: one ``str.replace`` each, which is
# several times cheaper than a regular expression's pass over text outside ASCII.
_QUOTES_AND_DASHES = tuple((c, "'") for c in "\u2018\u2019\u02bc\u02bb\u00b4\u2032\u02be\u02bf") + tuple(
    (chr(c), " ") for c in (*range(0x2010, 0x2016), 0x2212, 0x00A0)
)
_ABBREVIATIONS = frozenset(
    [
        "mr",
        "mrs",
        "ms",
        "dr",
        "gen",
        "lt",
        "col",
        "maj",
        "sgt",
        "capt",
        "adm",
        "cmdr",
        "brig",
        "sen",
        "rep",
        "gov",
        "pres",
        "prof",
        "st",
        "no",
        "jan",
        "feb",
        "mar",
        "apr",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
        "inc",
        "ltd",
        "co",
        "corp",
        "vs",
        "approx",
    ]
)
# Each pattern starts with a literal or a small class, so the regex engine skips ahead quickly; the context
# checks happen in Python, only at the few places a pattern matched.
_US = re.compile(r"U\.?S\.?(?:A\.?)?")
_ACRONYM = re.compile(r"\.[A-Za-z]\.")
_DOTTED = re.compile(r"(?:[A-Za-z]\.){2,}")
_STOP = re.compile(r"[.!?]+(?=[\s\"')\]]|$)")
_POSSESSIVE = re.compile(r"'[sS](?![A-Za-z0-9])")
# Lower-case letters and digits stay, "|" stays, everything else is a space; apostrophes are deleted.
_WORDS = bytes(
    c + 32 if 65 <= c <= 90 else c if (97 <= c <= 122 or 48 <= c <= 57 or c == 124) else 32 for c in range(256)
)


def _us(m: re.Match[str]) -> str:
    text, start, end = m.string, m.start(), m.end()
    if (start and (text[start - 1].isalpha() or text[start - 1] == ".")) or (end < len(text) and text[end].isalpha()):
        return m.group()
    return " usa "


def _undot(m: re.Match[str]) -> str:
    return m.group().replace(".", "") + " "


def _stop(m: re.Match[str]) -> str:
    if m.group()[0] != ".":
        return " | "
    if m.group() == "..":  # a separator in Arabic-script posts ("بالمسيرات.. قاعدة الأسد تحت النيران"), not a stop
        return " "
    text, start = m.string, m.start()
    word_start = start
    while word_start and text[word_start - 1].isalpha():
        word_start -= 1
    if text[word_start:start].lower() in _ABBREVIATIONS:
        return " "
    return " | "


def _fold(text: str) -> tuple[str, bool]:
    """Folded text, and whether it keeps Arabic-script letters (else it is ASCII)."""
    for char, replacement in _QUOTES_AND_DASHES:
        if char in text:
            text = text.replace(char, replacement)
    if text.isascii():  # typographic quotes and dashes were the only non-ASCII characters
        return text, False
    if has_arabic(text):
        return fold_arabic(sorani_spelling(text)), True
    # Latin letters keep their base form (their combining marks, like scripts the pack is not written in, are not
    # ASCII: dropped).
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii"), False


def _breaks_and_stops(text: str) -> str:
    """Line breaks as sentence breaks, sentence ends marked, possessive endings dropped (steps of ``normalize``,
    each run only when its character is there)."""
    if "\n" in text or "\r" in text:
        text = text.replace("\r", "\n").replace("\n", " | ")
    if "." in text or "!" in text or "?" in text:
        text = _STOP.sub(_stop, text)
    if "'" in text:
        text = _POSSESSIVE.sub("", text)
    return text


def normalize(text: str) -> str:
    """The normal form of ``text`` (see the module docstring). Pure, and the same for phrases and articles."""
    if not text:
        return "  "
    arabic = False
    if not text.isascii():
        text, arabic = _fold(text)
    if "US" in text or "U.S" in text:
        text = _US.sub(_us, text)
    if _ACRONYM.search(text):
        text = _DOTTED.sub(_undot, text)
    text = _breaks_and_stops(text)
    if arabic:
        text = arabic_words(text)
    else:
        text = " ".join(text.encode("ascii").translate(_WORDS, b"'`").decode("ascii").split())
    while "| |" in text:
        text = text.replace("| |", "|")
    return f" {text.strip(' |')} "


# Between the texts of ``normalize_fields``: whitespace to every pattern above, as the end of a text is (so no
# pattern sees past a text), and the one control character the translation keeps, to cut the texts apart again.
_FIELD = "\x1f"
_WORDS_FIELDS = _WORDS[:0x1F] + b"\x1f" + _WORDS[0x20:]
_SPACES = re.compile("  +")


def normalize_fields(*texts: str) -> list[str]:
    """``[normalize(t) for t in texts]``, with one pass of each step over all the Latin-script texts together (an
    article's fields, or those of many articles: the per-article cost of matching is mostly these steps' calls)."""
    out = [""] * len(texts)
    batch: list[int] = []
    folded: list[str] = []
    for i, text in enumerate(texts):
        if not text.isascii():
            text, arabic = _fold(text)
            if arabic:
                out[i] = normalize(texts[i])
                continue
        if _FIELD in text:
            out[i] = normalize(texts[i])
            continue
        batch.append(i)
        folded.append(text)
    if not batch:
        return out
    text = _FIELD.join(folded)
    if "US" in text or "U.S" in text:
        text = _US.sub(_us, text)
    text = _breaks_and_stops(_undotted(text))
    # What ``normalize`` does to each text from here (words joined by one space, no "| |", ends stripped of spaces
    # and breaks), done to all of them at once: no pattern below reaches across a separator.
    text = _SPACES.sub(" ", text.encode("ascii").translate(_WORDS_FIELDS, b"'`").decode("ascii"))
    while "| |" in text:
        text = text.replace("| |", "|")
    for i, field in zip(batch, text.split(_FIELD), strict=True):
        out[i] = f" {field.strip(' |')} "
    return out


# ``plain_words``: the words of ``normalize`` without its sentence breaks, cheaply, to rule texts out before the real
# normalisation (``detection.prefilter``). The separator is no word character.
PLAIN_SEPARATOR = b"\x00"
_PLAIN_SPACES = re.compile(b"  +")
_PLAIN_WORDS = bytes(
    c + 32 if 65 <= c <= 90 else c if (97 <= c <= 122 or 48 <= c <= 57 or c == 0) else 32 for c in range(256)
)


_RUN_CHARACTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz.")


def _undotted(text: str) -> str:
    """``_DOTTED.sub(_undot, text)``, run only on the runs of letters and dots that hold a dotted acronym: a match
    of ``_DOTTED`` lies within one such run and holds a match of ``_ACRONYM`` (the dotted pattern is slow to look
    for everywhere, the acronym is rare)."""
    pieces: list[str] = []
    done = 0
    for found in _ACRONYM.finditer(text):
        start = found.start()
        if start < done:
            continue  # in the run just replaced
        while start > done and text[start - 1] in _RUN_CHARACTERS:
            start -= 1
        end = found.end()
        while end < len(text) and text[end] in _RUN_CHARACTERS:
            end += 1
        pieces += (text[done:start], _DOTTED.sub(_undot, text[start:end]))
        done = end
    return "".join((*pieces, text[done:])) if pieces else text


def plain_words(texts: list[str]) -> tuple[bytes, list[bool]]:
    """The words of ``normalize(text)`` for each text, in their order, one space apart and one space each side,
    without the sentence breaks (so a phrase found in ``normalize(text)`` is found here too): the texts' words as
    ASCII, joined by ``PLAIN_SEPARATOR``. And for each text whether
    it is unsure: with Arabic-script letters or the separator; an unsure text's words are not given, it must be
    normalised. The steps are those of ``normalize`` but for the sentence breaks, each run once
    over all the texts but for the folding of letters outside ASCII, run on each text that has them."""
    unsure = [False] * len(texts)
    separator = " \x00 "
    joined = separator.join(texts)
    if not joined.isascii() or joined.count("\x00") != len(texts) - 1:
        folded = list(texts)
        for i, text in enumerate(texts):
            if "\x00" in text:
                unsure[i], folded[i] = True, ""
            elif not text.isascii():
                text, unsure[i] = _fold(text)
                folded[i] = "" if unsure[i] else text
        joined = separator.join(folded)
    if "US" in joined or "U.S" in joined:
        joined = _US.sub(_us, joined)
    joined = _undotted(joined)
    if "'" in joined:
        joined = _POSSESSIVE.sub("", joined)
    return _PLAIN_SPACES.sub(b" ", b" " + joined.encode("ascii").translate(_PLAIN_WORDS, b"'`") + b" "), unsure


#: Stems cut before a suffix ("retaliat~", "facilit~", "injur~", "announc~") match the nouns and adjectives that
#: complete them as well as the verb forms: retaliation, retaliatory, facilities, injuries, announcement.
_CUT_STEMS = (
    ("at", ("e", "es", "ion", "ions", "ory", "or", "ors", "ive")),
    ("it", ("y", "ies")),
    ("ur", ("y", "ies", "e", "es")),
    ("lt", ("y", "ies")),
    ("nc", ("e", "es", "ement", "ements")),
    ("uc", ("e", "es", "tion", "tions")),
    ("fen", ("ce", "se", "ces", "ses", "sive")),
)


def _word_forms(word: str, language: str | None) -> set[str]:
    if word.startswith("^") and has_arabic(word):
        return arabic_verb_forms(fold_arabic(word[1:]))
    if not word.endswith("~"):
        return {word}
    stem = word[:-1]
    if has_arabic(stem):
        return arabic_forms(stem, language)
    forms = {stem, stem + "s", stem + "es", stem + "ed", stem + "d", stem + "ing"}
    if stem.endswith("e"):
        forms.add(stem[:-1] + "ing")
    if stem.endswith("y") and len(stem) > 2 and stem[-2] not in "aeiou":
        forms |= {stem[:-1] + "ies", stem[:-1] + "ied"}
    last = stem[-1:]
    if len(stem) >= 3 and last not in "aeiouwxy" and stem[-2] in "aeiou" and stem[-3] not in "aeiou":
        forms |= {stem + last + "ed", stem + last + "ing"}  # hit -> hitting, plan -> planned
    for ending, suffixes in _CUT_STEMS:
        if len(stem) >= 5 and stem.endswith(ending):
            forms |= {stem + suffix for suffix in suffixes}
    return forms


def inflections(phrase: str, language: str | None = None) -> list[str]:
    """Forms of a keyword whose words end in ``~``: ``attack~`` -> attack, attacks, attacked, attacking;
    ``suspend~ attack~`` -> every combination. Arabic-script words take the suffixes of ``language`` when it is
    known (a name in an alias file), else those of Arabic, Persian and Sorani.

    Over-generation is harmless (a form that is not a word never occurs); missing a form would be a miss.
    """
    if "~" not in phrase and "^" not in phrase:
        return [phrase]
    variants = [""]
    for word in phrase.split(" "):
        variants = [f"{v} {f}".strip() for v in variants for f in sorted(_word_forms(word, language))]
    return variants


def without_blog_label(title: str) -> str:
    """``title`` without a live blog's label before its line (the label names the blog, not the story)."""
    if "ive" not in title and "IVE" not in title and "appened" not in title and "APPENED" not in title:
        return title
    return _BLOG_LABEL.sub("", title, count=1)
