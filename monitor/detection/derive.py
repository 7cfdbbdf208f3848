"""``monitor rules derive``: suggest keywords and entities for a new rule from example articles.

Keywords are the 1–3 word n-grams of the normalised text (``textnorm``, so they match the way the matcher
does) that are over-represented in the examples compared with a background corpus of general news, ranked by
Dunning's log-likelihood ratio G² on a 2×2 table (this n-gram vs every other n-gram of its length, examples vs
background). G² weighs how much more frequent a phrase is against how much evidence there is for it, so a
phrase seen 30 times at 20× its background rate beats one seen twice that never occurs in the background.
N-grams never cross a sentence break, and those that begin or end with a stopword ("strike on", "the
militia") are left out, which also drops the stopword-only ones.

Entities are capitalised multi-word names found in the original text ("Kataib Hezbollah", "Abu Mahdi
al-Muhandis"), grouped under a key that folds common transliteration variation (q/k, vowels, doubled letters,
dropped h, the ``al-`` particle and leading titles), so "Kata'ib Hezbollah", "Kataeb Hizbollah" and "Kataib
Hezbollah" are one entity with three spellings. They are ranked by the same statistic.

The output is YAML meant to be edited by hand: a ``keywords:`` list and an ``entities:`` list shaped like
``rules/entities.yaml``, with the counts and scores in comments.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from importlib.resources import as_file, files
from pathlib import Path
from typing import TextIO

from monitor.core.errors import MonitorError
from monitor.core.models import Article
from monitor.detection.text import SENTENCE_BREAK, normalize
from monitor.parsing.files import read_articles

__all__ = ["PROGRESS_EVERY", "derive", "entity_key"]

MAX_WORDS = 3
MIN_COUNT = 2  # a phrase or name seen once is an anecdote, not a pattern
#: A phrase is dropped when a longer suggested phrase accounts for this share of its occurrences ("kataib"
#: when nearly every "kataib" is in "kataib hezbollah").
SUBSUMED = 0.85
PROGRESS_EVERY = 5000
BACKGROUND = "background.jsonl.gz"

# Function words and number words, plus the reporting verbs and contractions of news prose: long articles use
# them far more than headlines do, so against a headline background they would otherwise look "discriminative".
_STOPWORD_LIST = """
    a about above after again against al all also am an and any are as at be because been before being below
    between both but by can could did didnt do does doesnt doing dont down during each either el even ever every
    few for from further get got had has have having he hed her here hers herself hes him himself his how i id
    if im in into is isnt it its itself ive just let lets many may me might more most much must my myself
    neither no nor not now of off on once one only or other others our ours ourselves out over own per quite
    rather s said same say saying says she should since so some still such t than that thats the their theirs
    them themselves then there theres these they theyre this those though through thus to told too under until
    up upon us very via was wasnt we were what whats when where whether which while who whom whose why will with
    within without wont would yet you your youre yours yourself yourselves two three four five six seven eight
    nine ten
"""
_STOPWORDS = frozenset(_STOPWORD_LIST.split())
# Lower-case words that may sit inside a name ("Department of Defense", "Abu Mahdi al-Muhandis").
_CONNECTORS = frozenset({"al", "el", "bin", "ibn", "bint", "of", "de", "la", "van", "von", "der"})
# Leading titles left out of the grouping key, so "General Qassem Soleimani" groups with "Qasem Soleimani".
_TITLE_LIST = """
    president general gen lt col colonel maj major brig sgt capt adm admiral mr mrs ms dr sheikh sayyid sayed
    commander minister prime supreme leader ayatollah grand senator sen rep gov
"""
_TITLES = frozenset(_TITLE_LIST.split())
_NAME_WORD = re.compile(r"[^\W\d_][\w'’-]*")
_NAME_BREAK = re.compile(r"[^\w\s'’-]")
_MAX_NAME_WORDS = 6
_PLAIN = re.compile(r"[A-Za-z](?:[A-Za-z0-9'’. -]*[A-Za-z0-9.])?")
_YAML_WORDS = frozenset({"y", "n", "yes", "no", "on", "off", "true", "false", "null"})


@dataclass
class _Side:
    """What one corpus (the examples, or the background) contains."""

    articles: int = 0
    grams: Counter[str] = field(default_factory=Counter)
    gram_docs: Counter[str] = field(default_factory=Counter)  # articles that contain the n-gram
    totals: list[int] = field(default_factory=lambda: [0] * (MAX_WORDS + 1))  # n-gram slots, by length
    names: Counter[str] = field(default_factory=Counter)  # name mentions, by grouping key
    name_docs: Counter[str] = field(default_factory=Counter)
    spellings: Counter[tuple[str, str]] = field(default_factory=Counter)  # (key, name as written)


@dataclass(frozen=True, slots=True)
class _Scored:
    text: str
    score: float  # signed G²
    examples: int
    docs: int
    background: int
    log_ratio: float  # log2 of the examples' rate over the background's


def g2(a: int, b: int, n1: int, n2: int) -> float:
    """Signed log-likelihood ratio G² of an item seen ``a`` times among ``n1`` and ``b`` times among ``n2``:
    positive when the first corpus uses it more, per item, than the second."""
    total, k = n1 + n2, a + b
    if not total or not k or k == total:
        return 0.0
    cells = (
        (a, n1 * k / total),
        (b, n2 * k / total),
        (n1 - a, n1 * (total - k) / total),
        (n2 - b, n2 * (total - k) / total),
    )
    value = 2.0 * sum(o * math.log(o / e) for o, e in cells if o > 0)
    return value if a * n2 >= b * n1 else -value


def entity_key(name: str) -> str:
    """The key under which spellings of one name group: ``Kata'ib Hizballah`` and ``Kataeb Hezbollah`` share
    one, as do ``Qassem Soleimani``, ``General Qasem Suleimani`` and ``Qassim Sulaimani``."""
    words = [w for w in normalize(name).split() if w not in ("al", "el", SENTENCE_BREAK)]
    while len(words) > 1 and words[0] in _TITLES:
        words.pop(0)
    folded = []
    for word in words:
        word = re.sub(r"(.)\1+", r"\1", word.replace("q", "k").replace("h", ""))
        folded.append(re.sub(r"[aeiouy]+", "a", word))
    return " ".join(w for w in folded if w)


def _normal_text(article: Article) -> str:
    # Built as the matcher builds it: a summary repeated in the body counts once.
    title, summary, content = normalize(article.title), normalize(article.summary), normalize(article.content)
    if len(summary) > 2 and summary.strip() in content:
        summary = " "
    return SENTENCE_BREAK.join((title, summary, content))


def _ngrams(text: str, totals: list[int]) -> Iterator[str]:
    """The candidate n-grams of a normal text; every n-gram slot, candidate or not, is added to ``totals``."""
    for segment in text.split(SENTENCE_BREAK):
        words = segment.split()
        # Numbers and stray letters ("2020", the "f" of "F-15") count as stopwords.
        stop = [w in _STOPWORDS or w.isdigit() or len(w) == 1 for w in words]
        for n in range(1, MAX_WORDS + 1):
            slots = len(words) - n + 1
            if slots <= 0:
                break
            totals[n] += slots
            for i in range(slots):
                if not (stop[i] or stop[i + n - 1]):
                    yield " ".join(words[i : i + n])


def _is_name_word(word: str) -> bool:
    # "CJTF-OIR" and "al-Muhandis" are name words; "Iran-backed" and "US-led" are not.
    first, _, rest = word.partition("-")
    if first in _CONNECTORS:
        return rest[:1].isupper()
    last = word.rsplit("-", 1)[-1][:1]
    return word[0].isupper() and (last.isupper() or last.isdigit())


def _title_case(line: str) -> bool:
    """Headlines and captions capitalise every word; a "name" found in them would swallow the headline."""
    words = [w for w in _NAME_WORD.findall(line) if len(w) > 3]
    return len(words) >= 3 and sum(w[0].isupper() for w in words) >= 0.6 * len(words)


def _names(text: str) -> Iterator[str]:
    """Capitalised multi-word names in original text, as written (a possessive ``'s`` dropped)."""
    for line in text.splitlines():
        if _title_case(line):
            continue
        for chunk in _NAME_BREAK.split(line):
            run: list[str] = []
            for raw in [*chunk.split(), ""]:
                possessive = raw.endswith(("'s", "’s"))
                word = raw[:-2] if possessive else raw
                if word and (_is_name_word(word) or (run and word in _CONNECTORS)):
                    run.append(word)
                    if not possessive:  # "Iran's Supreme Leader": the possessive ends a name
                        continue
                while run and ((run[0].lower() in _STOPWORDS and not run[0].isupper()) or run[0] in _CONNECTORS):
                    run.pop(0)  # "The United States", "At President Biden"; not "US Central Command"
                while run and run[-1] in _CONNECTORS:
                    run.pop()
                if sum(w[0].isupper() for w in run) >= 2 and len(run) <= _MAX_NAME_WORDS:
                    yield " ".join(run)
                run = []


def _count(
    articles: Iterable[Article],
    side: _Side,
    *,
    label: str,
    progress: TextIO,
    every: int,
    keep: tuple[set[str], set[str]] | None = None,
) -> None:
    """Count n-grams and names into ``side``; with ``keep`` (n-grams, name keys), only those."""
    for article in articles:
        side.articles += 1
        grams = Counter(_ngrams(_normal_text(article), side.totals))
        if keep is not None:
            grams = Counter({g: c for g, c in grams.items() if g in keep[0]})
        side.grams.update(grams)
        side.gram_docs.update(grams.keys())
        names: Counter[str] = Counter()
        for name in _names("\n".join((article.title, article.summary, article.content))):
            key = entity_key(name)
            if key and (keep is None or key in keep[1]):
                names[key] += 1
                side.spellings[(key, name)] += 1
        side.names.update(names)
        side.name_docs.update(names.keys())
        if every and side.articles % every == 0:
            print(f"derive: {side.articles} {label} articles read", file=progress, flush=True)


def _score(text: str, a: int, docs: int, b: int, n1: int, n2: int) -> _Scored:
    # Half a count on each side keeps the ratio finite when the background never has the phrase.
    log_ratio = math.log2(((a + 0.5) / max(n1, 1)) / ((b + 0.5) / max(n2, 1)))
    return _Scored(text, g2(a, b, n1, n2), a, docs, b, log_ratio)


def _keyword_candidates(examples: _Side) -> set[str]:
    min_docs = min(2, examples.articles)  # one article repeating its boilerplate is not a pattern
    found = {g for g, c in examples.grams.items() if c >= MIN_COUNT and examples.gram_docs[g] >= min_docs}
    redundant = set()
    for gram in found:
        words = gram.split()
        if len(words) > 1:
            for part in (" ".join(words[:-1]), " ".join(words[1:])):
                if part in found and examples.grams[gram] >= SUBSUMED * examples.grams[part]:
                    redundant.add(part)
    return found - redundant


def _keywords(examples: _Side, background: _Side, candidates: set[str], top: int) -> list[_Scored]:
    scored = []
    for gram in candidates:
        n = gram.count(" ") + 1
        s = _score(
            gram,
            examples.grams[gram],
            examples.gram_docs[gram],
            background.grams[gram],
            examples.totals[n],
            background.totals[n],
        )
        if s.score > 0:
            scored.append(s)
    scored.sort(key=lambda s: (-s.score, -s.examples, s.text))
    return scored[:top]


def _entities(examples: _Side, background: _Side, top: int) -> list[tuple[_Scored, list[str]]]:
    forms: dict[str, dict[str, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
    for (key, name), count in examples.spellings.items():
        forms[key][normalize(name).strip()][name] += count
    out = []
    for key, count in examples.names.items():
        if count < MIN_COUNT:
            continue
        # One spelling per normal form: the matcher reads "Kata'ib" and "Kataib" alike, so listing both is noise.
        ranked = sorted(forms[key].values(), key=lambda c: (-c.total(), c.most_common(1)[0][0]))
        names = [c.most_common(1)[0][0] for c in ranked]
        s = _score(
            names[0], count, examples.name_docs[key], background.names[key], examples.totals[1], background.totals[1]
        )
        out.append((s, names))
    # Names common in general news ("White House") are still listed, below the distinctive ones.
    out.sort(key=lambda e: (-e[0].score, -e[0].examples, e[0].text))
    return out[:top]


def _scalar(text: str) -> str:
    """``text`` as a YAML scalar that is safe in block and flow lists: plain when it can be, else quoted."""
    if _PLAIN.fullmatch(text) and text.lower() not in _YAML_WORDS:
        return text
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a valid YAML double-quoted scalar


def _stats(s: _Scored) -> str:
    return (
        f"G2 {s.score:.1f}, examples {s.examples} in {s.docs} article{'s' * (s.docs != 1)}, "
        f"background {s.background}, log-ratio {s.log_ratio:.1f}"
    )


def _render(
    keywords: list[_Scored],
    entities: list[tuple[_Scored, list[str]]],
    *,
    examples: int,
    background: int,
    background_name: str,
) -> str:
    lines = [
        f"# Suggested by `monitor rules derive` from {examples} example articles,",
        f"# against {background} background articles ({background_name}).",
        "# Ranked by log-likelihood ratio (G2) of examples vs background; counts are occurrences; log-ratio is",
        "# log2 of the examples' rate over the background's (7.0 = 128 times as frequent).",
        "# Review before use: drop generic phrases, add ~ for inflections (strike~), give entities ids and types.",
    ]
    if not keywords:
        lines.append("keywords: []")
    else:
        lines.append("keywords:")
        width = max(len(_scalar(s.text)) for s in keywords)
        lines.extend(f"  - {_scalar(s.text):<{width}}  # {_stats(s)}" for s in keywords)
    if not entities:
        lines.append("entities: []")
    else:
        lines.append("entities:")
        used: set[str] = set()
        for s, names in entities:
            words = normalize(names[0]).split()
            while len(words) > 1 and words[0] in _TITLES:
                words.pop(0)  # "Prime Minister Mohammed Shia al-Sudani" -> mohammed_shia_al_sudani
            base = re.sub(r"[^a-z0-9]+", "_", " ".join(words)).strip("_")
            base = base if base[:1].isalpha() else f"entity_{base}"
            ident, n = base, 1
            while ident in used:
                n += 1
                ident = f"{base}_{n}"
            used.add(ident)
            lines += [
                f"  - id: {ident}  # {_stats(s)}",
                "    type: other",
                f"    names: [{', '.join(_scalar(n) for n in names)}]",
            ]
    return "\n".join(lines) + "\n"


def derive(
    corpus: list[Path],
    *,
    background: Path | None,
    top: int,
    out: TextIO,
    progress: TextIO,
    progress_every: int = PROGRESS_EVERY,
) -> None:
    """Write suggested keywords and entities (YAML, see the module docstring) for the example articles in
    ``corpus`` (files or folders in any format ``monitor scan`` reads), contrasted with ``background`` (default:
    the general-news sample shipped in ``monitor/data``). ``top`` caps each list. A line goes to ``progress``
    every ``progress_every`` articles read, so small inputs stay quiet. Raises ``MonitorError``."""
    if top < 1:
        raise MonitorError("--top must be at least 1")
    examples = _Side()
    _count(read_articles(corpus), examples, label="example", progress=progress, every=progress_every)
    if not examples.articles:
        raise MonitorError(f"no articles in {', '.join(str(p) for p in corpus)}")
    candidates = _keyword_candidates(examples)
    keep = (candidates, {k for k, c in examples.names.items() if c >= MIN_COUNT})
    contrast = _Side()
    background_name = str(background) if background is not None else f"monitor/data/{BACKGROUND}"
    shipped = files("monitor") / "data" / BACKGROUND
    with as_file(shipped) if background is None else nullcontext(background) as path:
        _count(read_articles([path]), contrast, label="background", progress=progress, every=progress_every, keep=keep)
    if not contrast.articles:
        raise MonitorError(f"no articles in the background corpus {background_name}")
    if progress_every and max(examples.articles, contrast.articles) >= progress_every:
        print(
            f"derive: done, {examples.articles} example and {contrast.articles} background articles",
            file=progress,
            flush=True,
        )
    out.write(
        _render(
            _keywords(examples, contrast, candidates, top),
            _entities(examples, contrast, top),
            examples=examples.articles,
            background=contrast.articles,
            background_name=background_name,
        )
    )
    out.flush()
