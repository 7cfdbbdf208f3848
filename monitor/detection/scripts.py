"""Arabic-script text (Arabic, Persian, Sorani Kurdish) folded to one matching form, and its word forms.

The three languages share one script but spell the same letters differently, so phrases and articles are folded
before they meet (``detection.text`` calls ``fold_arabic`` and ``arabic_words``):

* alef and hamza carriers fold to their base letter (``أ إ آ ٱ`` -> ``ا``, ``ؤ`` -> ``و``, ``ئ`` -> ``ی``),
  Arabic ``ي``/``ى`` and Persian ``ی`` are one letter, Arabic ``ك`` and Persian ``ک`` too, and the feminine
  ``ة`` is matched as ``ه`` (as is Persian ``ۀ``, whose ezafe mark says nothing about the word);
* Sorani's own letters ``ە ێ ۆ ڵ ڕ ڤ`` stay distinct: ``سلێمانی`` (the city) is not ``سلیمانی`` (the general);
  Sorani typed on an Arabic keyboard writes ``ە`` as ``ه`` (with a non-joiner inside a word: ``بنكه‌ی``, ``كرده``),
  which text that looks Sorani (one of ``ێ ۆ ڵ ڕ ڤ``, or ``ئه‌``) has turned back into ``ە`` (``sorani_spelling``,
  called by ``text.normalize`` before folding);
* short vowels (tashkeel), the tatweel and Quranic marks are dropped; Arabic-Indic and Persian digits become ASCII;
  bidi and zero-width controls are removed, and the zero-width non-joiner (Persian ``حزب‌الله``) is a word break;
* the definite article and a proclitic before it are not part of the word: ``القاعدة``, ``والقاعدة``,
  ``بالقاعدة`` and ``للقوات`` are ``قاعده`` and ``قوات`` (only when three letters remain, so ``الله`` stays).

A lone proclitic (``و ف ب ل ک``: ``وصواريخ``, ``لقوات``) cannot be told from a word's first letter without a
vocabulary, so the matcher detaches it only when what remains is a word of the rule pack (``detach_clitics``).

``~`` after an Arabic-script word stands for it with the common suffixes of the three languages (plural, dual,
relative adjective, pronoun, Persian plural and ezafe, Sorani definite and plural markers): ``arabic_forms``.
``^`` before an Arabic verb in the past tense stands for its family (``arabic_verb_forms``): the persons of the
past (``قصفت``, ``قصفوا``, ``قصفنا``), of the present and the future (``يقصف``, ``تقصف``, ``نقصف``, ``ستقصف``,
``يقصفون``; a leading alef of the derived stems is dropped there: ``استهدف`` -> ``يستهدف``, ``أجلى`` -> ``تجلي``)
and an object pronoun after either (``استهدفها``, ``سنستهدفها``). Persian and Sorani verbs are mostly compounds
(``حمله کرد``, ``کردە ئامانج``): rules list their forms.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = [
    "ARABIC_LETTERS",
    "arabic_forms",
    "arabic_verb_forms",
    "arabic_words",
    "detach_clitics",
    "fold_arabic",
    "has_arabic",
    "joined_forms",
    "sorani_spelling",
]

#: Letters of the script that make up words (after folding), as a character-class body.
ARABIC_LETTERS = "\u0621-\u063a\u0641-\u064a\u066e-\u06d3\u06d5\u06ee\u06ef\u06fa-\u06ff\u0750-\u077f"
_ANY_ARABIC = re.compile("[\u0600-\u06ff\u0750-\u077f\ufb50-\ufdff\ufe70-\ufeff]")
_PRESENTATION = re.compile("[\ufb50-\ufdff\ufe70-\ufeff]")
_NON_WORD = re.compile(f"[^a-z0-9|{ARABIC_LETTERS}]+")
_ARABIC_WORD = re.compile(f"[{ARABIC_LETTERS}]")
_SORANI_LETTER = re.compile("[\u06d5\u06ce\u06c6\u06b5\u0695\u06a4]")
# Sorani in the legacy spelling: its letters other than ە, or ئه‌ (Persian never writes ئ before ه).
# (ئه‌ is Sorani's ئە; ه‌ك its ەک on an Arabic keyboard, where Persian writes ک and Arabic has no non-joiner)
_LEGACY_SORANI = re.compile("[\u06ce\u06c6\u06b5\u0695\u06a4]|\u0626\u0647\u200c|\u0647\u200c\u0643")
# ه standing for ە: before a non-joiner, or ending a word.
_LEGACY_E = re.compile("\u0647\u200c|\u0647(?![\u0600-\u06ff])")

_DROP = (
    *range(0x0300, 0x0370),  # Latin combining accents (after NFKD)
    *range(0x064B, 0x0660),  # tashkeel, and the hamza and madda marks NFKD splits from alef, waw and yeh
    0x0670,  # superscript alef
    0x0640,  # tatweel
    *range(0x06D6, 0x06DD),  # Quranic marks
    *range(0x06DF, 0x06E5),
    0x06E7,
    0x06E8,
    *range(0x06EA, 0x06EE),
    0x200B,  # zero-width space, joiner, and the bidi marks and embeddings
    0x200D,
    0x200E,
    0x200F,
    *range(0x202A, 0x202F),
    *range(0x2066, 0x206A),
    0x061C,
    0x2060,
    0xFEFF,
    0x00AD,
)
_MAP = {
    # The weapon emoji of the factions' teaser posts ("#التاجي 🚀🚀", "#عين_الأسد 🛩️") read as the words they stand
    # for, in text that has Arabic script (English text is not folded).
    "\U0001f680": " صاروخ ",  # 🚀 a rocket
    "\U0001f6e9": " مسیره ",  # 🛩 a small aircraft: the drone (written folded: the table is read once)
    "\U0001f4a5": " انفجار ",  # 💥 an explosion
    "\U0001f4a3": " عبوه ",  # 💣 a bomb
    "\u0623": "\u0627",  # أ
    "\u0625": "\u0627",  # إ
    "\u0622": "\u0627",  # آ
    "\u0671": "\u0627",  # ٱ
    "\u0624": "\u0648",  # ؤ -> و
    "\u0626": "\u06cc",  # ئ -> ی
    "\u064a": "\u06cc",  # ي -> ی
    "\u0649": "\u06cc",  # ى -> ی
    "\u0643": "\u06a9",  # ك -> ک
    "\u0629": "\u0647",  # ة -> ه
    "\u06c0": "\u0647",  # ۀ -> ه
    "\u06be": "\u0647",  # ھ -> ه (Sorani h)
    "\u06c1": "\u0647",  # ہ
    "\u200c": " ",  # ZWNJ: a break inside a compound
    "\u060c": ",",  # ،
    "\u061b": ";",  # ؛
    "\u061f": "?",  # ؟
    "\u06d4": ".",  # ۔
    "\u066b": ".",  # Arabic decimal separator
    "\u066c": ",",  # Arabic thousands separator
    "\u00ab": '"',  # «
    "\u00bb": '"',  # »
}
_TABLE: dict[int, str | None] = {c: None for c in _DROP}
_TABLE.update({ord(k): v for k, v in _MAP.items()})
_TABLE.update({0x0660 + i: str(i) for i in range(10)})
_TABLE.update({0x06F0 + i: str(i) for i in range(10)})

# The article with the proclitics that attach before it, longest first; ``لل`` is ``ل`` + ``ال``.
_ARTICLES = ("وبال", "فبال", "وکال", "ولل", "فلل", "وال", "فال", "بال", "کال", "لل", "ال")
_MIN_STEM = 3
_PROCLITICS = ("عال", "وب", "ول", "فب", "فل", "وک", "و", "ف", "ب", "ل", "ک")
# Common words whose first letter only looks like a proclitic (folded spelling): Persian «برای» is "for", not
# «رای» ("vote"), «فردا» "tomorrow", not «ردا» ("in response"), «باز» "again"; Arabic «واحد» "one", «بدا» "seemed".
_WHOLE_WORDS = frozenset({"برای", "برا", "باز", "فردا", "واحد", "بدا"})

# Suffixes ``~`` adds to an Arabic-script stem (spelled as in folded text; a suffix that is not a word ending in
# one language simply never occurs there).
_SORANI_MARKERS = (
    "ەکە",
    "ەکەی",
    "ەکان",
    "ەکانی",
    "ێک",
    "ێکی",
    "ان",
    "انی",
    "ی",
    "یان",
    "ە",
    "کە",
    "کەی",
    "کان",
    "کانی",
    "ەکانیان",
    "یەک",
    "یەکی",
    "یەکدا",
    "یەکەوە",
)
_SORANI_POSTPOSITIONS = ("دا", "ەدا", "ێکدا", "ەکەدا", "ەکاندا", "یدا", "ەوە", "وە", "ەکەوە", "ەکانەوە", "یش", "ش")
_SUFFIXES = {
    # Arabic: plural, dual, relative adjective, pronouns, and the alif of the indefinite accusative (رتلاً)
    "ar": ("ات", "ین", "ون", "ان", "ه", "ها", "هم", "هما", "نا", "ی", "یه", "یین", "یون", "یات", "ا"),
    # Persian: plural, ezafe and indefinite
    "fa": ("ها", "های", "هایی", "ان", "ی", "ای", "یی", "یان", "ش", "شان"),
    # Sorani: definite, indefinite, plural, ezafe; the postpositions that close «لە … دا», «لە … ەوە», and -یش
    "ckb": _SORANI_MARKERS + _SORANI_POSTPOSITIONS,
}
_ALL_SUFFIXES = tuple(dict.fromkeys(s for group in _SUFFIXES.values() for s in group))
# A feminine stem (ending in ة, folded to ه) takes them on its t: ضربة -> ضربات, ضربتين, ضربته.
_FEMININE = ("ات", "تان", "تین", "ته", "تها", "تهم")


def has_arabic(text: str) -> bool:
    """Whether ``text`` has any character of the Arabic script (letters, digits, marks or presentation forms)."""
    return _ANY_ARABIC.search(text) is not None


def sorani_spelling(text: str) -> str:
    """``text`` with the legacy Sorani ``ه`` for ``ە`` (before a non-joiner or ending a word) written ``ە``, when
    the text looks Sorani; other text is returned as it is (Persian ``خانه‌ها`` keeps its ``ه``)."""
    if "\u0647" not in text or not _LEGACY_SORANI.search(text):
        return text
    return _LEGACY_E.sub("\u06d5", text)


def fold_arabic(text: str) -> str:
    """``text`` with Arabic-script letters folded (see the module docstring) and Latin letters stripped of their
    accents. Other characters pass through; ``arabic_words`` makes words of the result. (The legacy Sorani
    spelling is read by the caller of a whole text, ``text.normalize``: a pattern built of several languages'
    words, as ``events.facts`` compiles, is not one text.)"""
    if "\u06c0" in text:
        text = text.replace("\u06c0", "\u0647")  # before NFKD, which would make it Sorani ە
    if _PRESENTATION.search(text):
        text = unicodedata.normalize("NFKC", text)
    return unicodedata.normalize("NFKD", text).translate(_TABLE)


def _strip_article(word: str) -> str:
    for prefix in _ARTICLES:
        if word.startswith(prefix) and len(word) - len(prefix) >= _MIN_STEM:
            return word[len(prefix) :]
    return word


def arabic_words(text: str) -> str:
    """Folded text as words: lower case, anything but letters, digits and ``|`` a space, articles detached."""
    words = _NON_WORD.sub(" ", text.lower().replace("'", "").replace("`", "")).split()
    return " ".join(_strip_article(w) if _ARABIC_WORD.match(w) else w for w in words)


def detach_clitics(text: str, vocabulary: frozenset[str]) -> str:
    """Normalised ``text`` with a proclitic (``و ف ب ل ک`` or two of them) dropped from each Arabic-script word
    that is not itself in ``vocabulary`` but is once the proclitic is gone: ``وصواریخ`` -> ``صواریخ``."""
    out = []
    for word in text.split(" "):
        if word and word not in vocabulary and word not in _WHOLE_WORDS and _ARABIC_WORD.match(word):
            for clitic in _PROCLITICS:
                if word.startswith(clitic) and word[len(clitic) :] in vocabulary:
                    word = word[len(clitic) :]
                    break
        out.append(word)
    return " ".join(out)


def arabic_forms(stem: str, language: str | None = None) -> set[str]:
    """The forms ``stem~`` stands for: the stem and the stem with each common suffix of ``language`` (``ar``,
    ``fa``, ``ckb``), or of all three when it is not known (a rule written for the three languages)."""
    if language is None and _SORANI_LETTER.search(stem):
        language = "ckb"  # a word with Sorani's own letters takes Sorani's suffixes
    forms = {stem, *(stem + s for s in _SUFFIXES.get(language or "", _ALL_SUFFIXES))}
    if language in (None, "ar") and stem.endswith(("ة", "ه")) and len(stem) > 2:
        forms |= {stem[:-1] + s for s in _FEMININE}
    return forms


# The Arabic verb: endings of the past (she or I, the two, they, we, you), the present's persons (he, she or you,
# we, I) with the future's «س» before them and the present's plural endings, and the object pronouns.
_PAST_ENDINGS = ("", "ت", "تا", "وا", "نا", "تم", "ن")
_PRESENT_PREFIXES = ("ی", "ت", "ن", "ا")
_PRESENT_ENDINGS = ("", "ون", "ان", "ین", "ن")
_OBJECTS = ("ه", "ها", "هم", "هما")


def arabic_verb_forms(stem: str) -> set[str]:
    """The forms ``^stem`` stands for, ``stem`` an Arabic verb in the past tense, third person (``قصف``,
    ``استهدف``, ``اطلق``): its persons in the past, the present and the future, and those with an object pronoun.
    Stems are written as folded text spells them (``ی`` for ``ى`` and ``ي``, ``ا`` for ``أ``); a weak verb's final
    ``ی`` falls before the endings of the past that start with ``ت`` or ``و`` (``اجلی`` -> ``اجلت``, ``ارتقوا``).
    Over-generation is harmless."""
    present_stem = stem[1:] if stem.startswith("ا") and len(stem) > 3 else stem
    past = {stem + e for e in _PAST_ENDINGS} | {stem + "و" + o for o in _OBJECTS}
    if stem.endswith("ی") and len(stem) > 3:
        past |= {stem[:-1] + e for e in ("ت", "تا", "وا")} | {stem[:-1] + "و" + o for o in _OBJECTS}
    present = {p + present_stem + e for p in _PRESENT_PREFIXES for e in _PRESENT_ENDINGS}
    future = {"س" + f for f in present}
    with_object = {
        f + o for f in (stem, stem + "ت", stem + "نا", *(p + present_stem for p in _PRESENT_PREFIXES)) for o in _OBJECTS
    }
    with_object |= {"س" + f for f in with_object if not f.startswith(stem)}
    return past | present | future | with_object


def joined_forms(phrase: str) -> tuple[str, ...]:
    """A normalised phrase and its spellings with two neighbouring Arabic-script words written as one, as Persian
    and Sorani write compounds apart, with a non-joiner (a break once normalised) or joined: ``حزب الله``,
    ``حزبالله``."""
    words = phrase.split(" ")
    forms = [phrase]
    for i in range(1, len(words) - 2):
        left, right = words[i], words[i + 1]
        if left != "|" and right != "|" and _ARABIC_WORD.match(left) and _ARABIC_WORD.match(right):
            forms.append(" ".join([*words[:i], left + right, *words[i + 2 :]]))
    return tuple(forms)
