"""Facts an alert reports, read from an article's text: whether an official confirmed it (or denied it), whether a
group claims it, and how many were killed or wounded. Pure: regular expressions over plain text; Arabic-script text
is matched in its normal form (``detection.text``), so hamza, yeh and kaf spellings do not matter."""

from __future__ import annotations

import re
from datetime import datetime

from monitor.detection.language import detect_language
from monitor.detection.scripts import fold_arabic, has_arabic
from monitor.detection.text import normalize
from monitor.events.days import WEEKDAYS, first_sentence

__all__ = [
    "STATUSES",
    "casualty_count",
    "claim_of_responsibility",
    "event_status",
    "is_follow_up",
    "is_late_toll",
    "is_tally",
    "leads_back",
    "looks_back",
    "news_part",
    "official_confirmation",
    "official_denial",
    "reports_dead",
    "reports_earlier",
    "reports_killing",
    "reports_nobody_killed",
    "revised_status",
    "status_change",
    "tells_of_deadly_attack",
]

#: What is known of an event: a group's claim only, reported (by news, unconfirmed), officially confirmed, or
#: officially denied.
STATUSES = ("claimed", "reported", "confirmed", "denied")

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


_DENIAL = re.compile(
    r"\b(?:Pentagon|Department of (?:Defense|War)|Defen[cs]e (?:Department|Secretary)|CENTCOM|Central Command|"
    r"White House|State Department|Iraqi (?:government|military|prime minister|PM|security media cell|"
    r"joint operations command|foreign ministry)|Security Media Cell|US officials?|U\.S\. officials?)\b"
    r"(?:\W+\w+){0,4}?\W+(?:denied|denies|rejected reports|dismissed reports)\b",
    re.IGNORECASE,
)
_CLAIM = re.compile(
    r"\bclaim(?:ed|s|ing)? (?:responsibility|the (?:\w+ )?(?:attack|strike)|an? (?:\w+ )?(?:attack|strike))|"
    r"\bsaid (?:it|they) (?:had )?(?:targeted|attacked|struck|launched)|\bresponsibility for the (?:\w+ )?attack",
    re.IGNORECASE,
)
# Arabic-script officials and verbs, without the article (letters are folded when compiled): Arabic, Persian, Sorani.
_OFFICIAL_AS = (
    r"(?:بنتاغون|بنتاجون|وزاره دفاع امریکیه|وزاره دفاع امیرکیه|وزاره حرب امریکیه|قیاده مرکزیه امریکیه|"
    r"قیاده مرکزیه امیرکیه|سنتکوم|بیت ابیض|خارجیه امریکیه|مسوول امریکی|مسوولون امریکیون|خلیه اعلام امنی|"
    r"قیاده عملیات مشترکه|حکومه عراقیه|ناطق باسم قاید عام|یحیی رسول|پنتاگون|سنتکام|فرماندهی مرکزی امریکا|"
    r"کاخ سفید|وزارت دفاع امریکا|وزارت جنگ امریکا|دولت عراق|پێنتاگۆن|پنتاگۆن|سێنتکۆم|کۆشکی سپی|حکومەتی عێراق)"
)
_CONFIRM_VERB = {
    "ar": r"(?:اکد|اکدت|یوکد|توکد|اعلن|اعلنت|یعلن|تعلن|اقر|اقرت|اعترف|اعترفت|قال|قالت|ذکر|ذکرت)",
    "fa": r"(?:تایید کرد|تایید شد|اعلام کرد|گفت|اذعان کرد)",
    "ckb": r"(?:ڕایگەیاند|پشتڕاستی کردەوە|پشتڕاست کردەوە|پشتڕاستکردەوە|ووتی|وتی)",
}
_DENY_VERB = {
    "ar": r"(?:نفی|نفت|ینفی|تنفی|نفیا|کذب|کذبت|تکذیب)",
    "fa": r"(?:تکذیب کرد|تکذیب شد|رد کرد|انکار کرد)",
    "ckb": r"(?:ڕەتیکردەوە|ڕەتکردەوە|نکۆڵی لێکرد|نکۆڵی کرد)",
}
_CLAIM_AS = {
    "ar": r"(?:مجاهدونا|مجاهدو مقاومه|مجاهدی مقاومه|تبنت|تبنی|مسوولیتها|مسیولیتها|مسوولیه|مسیولیه|استهدفنا|"
    r"نعلن|(?:تعلن|اعلنت|بیان) مقاومه اسلامیه)",
    "fa": r"(?:مسیولیت|مسوولیت)(?: \S+){0,6} (?:بر عهده گرفت|پذیرفت|به عهده گرفت)|"
    r"مقاومت اسلامی عراق (?:\S+ ){0,5}اعلام کرد",
    "ckb": r"بەرپرسیارێتی(?: \S+){0,6} (?:گرتە ئەستۆ|گرتەئەستۆ)|بەرگریی? ئیسلامی لە عێراق (?:\S+ ){0,5}ڕایگەیاند",
}


def _around(who: str, verb: str) -> re.Pattern[str]:
    """``who`` then ``verb`` within six words (Persian and Sorani put the verb last), or (verb-first Arabic)
    ``verb`` then ``who``."""
    return re.compile(fold_arabic(rf" (?:{who}(?: \S+){{0,6}} {verb}|{verb}(?: \S+){{0,3}} {who}) "))


_CONFIRMATION_AS = {lang: _around(_OFFICIAL_AS, verb) for lang, verb in _CONFIRM_VERB.items()}
_DENIAL_AS = {lang: _around(_OFFICIAL_AS, verb) for lang, verb in _DENY_VERB.items()}
_CLAIM_AS_RE = {lang: re.compile(fold_arabic(rf" (?:{pattern}) ")) for lang, pattern in _CLAIM_AS.items()}


def _arabic_script(text: str, patterns: dict[str, re.Pattern[str]]) -> bool:
    """Whether the pattern of the text's language (when in Arabic script) matches its normal form."""
    if not has_arabic(text):
        return False
    pattern = patterns.get(detect_language(text) or "")
    return pattern is not None and pattern.search(normalize(text)) is not None


def official_confirmation(text: str) -> bool:
    """Whether an official (US or Iraqi government, Pentagon, CENTCOM) is reported confirming or stating it."""
    return _CONFIRMATION.search(text) is not None or _arabic_script(text, _CONFIRMATION_AS)


def official_denial(text: str) -> bool:
    """Whether an official (US or Iraqi government, Pentagon, CENTCOM) is reported denying it."""
    return _DENIAL.search(text) is not None or _arabic_script(text, _DENIAL_AS)


def claim_of_responsibility(text: str) -> bool:
    """Whether the text is (or reports) a group's claim of an attack: "claimed responsibility", a militia's
    first-person "استهدف مجاهدونا", "مسئولیت ... بر عهده گرفت", "بەرپرسیارێتی ... گرتە ئەستۆ"."""
    return _CLAIM.search(text) is not None or _arabic_script(text, _CLAIM_AS_RE)


def casualty_count(text: str) -> int | None:
    """The largest casualty figure stated ("killed 25", "three US soldiers were wounded"), if any."""
    best: int | None = None
    for m in _CASUALTIES.finditer(text):
        raw = m.group(1).lower()
        value = _NUMBER_WORDS.get(raw) if not raw.isdigit() else int(raw)
        if value is not None and value < 2000 and (best is None or value > best):
            best = value
    return best


def event_status(text: str) -> str:
    """The status an article gives a new event: an official denial or confirmation outweighs a claim."""
    if official_denial(text):
        return "denied"
    if official_confirmation(text):
        return "confirmed"
    return "claimed" if claim_of_responsibility(text) else "reported"


def revised_status(status: str, text: str) -> str:
    """The status after an article joins: an official denial denies it, an official confirmation (later than a
    denial, or in the same article) confirms it."""
    if official_denial(text) and not official_confirmation(text):
        return "denied"
    if official_confirmation(text):
        return "confirmed"
    return status


def status_change(old: str, new: str, *, revise_on_confirmation: bool = True) -> str | None:
    """The revision reason a change of status gives, if any: a denial always; a confirmation of a claimed or
    denied event when confirmations are revised (a reported one's confirmation says "officially confirmed")."""
    if new == old or (old, new) == ("reported", "confirmed"):
        return None
    return f"status: {old} -> {new}" if new == "denied" or revise_on_confirmation else None


# Headline words of Arabic-script reports on an earlier happening (normal form): its dead mourned and buried, the
# attack condemned, investigated or claimed after the fact ("نحن من استهدف": "we are the ones who targeted").
_EARLIER_AS = re.compile(
    fold_arabic(
        r" (?:تشییع|تشیع|یشیع|تزف|نعی|ینعی|تنعی|عزاء|یدین|تدین|ادانه|تحقیق|تحقیقات|نحن من|تبنت|تبنی|مراسم|پیکر|"
        r"تشییع|محکوم کرد|محکومیت|تحقیقات|سوگواری|ناشتن\S*|پرسە\S*|ئیدانە\S*|لێکۆڵینەوە\S*|ناسنامەی|هەڵوێست\S*) "
    )
)


#: Injuries counted weeks after the blast, in Arabic, Persian and Sorani headlines: concussions and brain injuries
#: ("أصيبوا بارتجاج في الدماغ", "دچار آسیب مغزی شدند", "برینی مێشکیان هەیە").
_LATE_TOLL_AS = re.compile(
    fold_arabic(
        r"(?: \S*ارتجاج\S*|اصابات دماغیه|اصابه دماغیه|فی دماغ|بدماغ|آسیب مغزی|ضربه مغزی|مغزی تروماتیک|مێشک\S*|"
        # the treated, and a count of the hurt that keeps climbing
        r"چارەسەر کران|درمان شدند|تلقوا علاج|"
        r"(?:مصدومان|مجروحان|مصابین|جرحی|بریندار\S*|آسیب‌دیده|آسیب دیده|زخمی)(?: \S+){0,8} "
        r"(?:به \d+ نفر رسید|رسید|بلغ|ارتفع|گەیشتە)) "
    )
)


def reports_earlier(title: str) -> bool:
    """Whether an Arabic-script headline reports on an earlier happening (see ``cluster.is_follow_up``): names its
    dead, mourns, condemns, investigates it, or counts the brain injuries it caused."""
    if not has_arabic(title):
        return False
    text = normalize(title)
    return _EARLIER_AS.search(text) is not None or _LATE_TOLL_AS.search(text) is not None


#: Injuries told as coming from an earlier happening: "troops' injuries from Iranian missiles".
_INJURIES_FROM = r"injur(?:y|ies) (?:from|in|after|sustained)"
#: Headline words of a report on an earlier happening, and of a new one (which a follow-up never is).
_FOLLOW_UP = re.compile(
    r"\b(?:names?|named|identif\w*|mourn\w*|funerals?|buri\w*|condemn\w*|vows?|vowed|investigat\w*|probe|toll|"
    r"aftermath|in the wake|respon\w* to|react\w*|tributes?|honou?r\w*|treated for|diagnos\w*|"
    r"recall\w*|recount\w*|describe\w*|^inside\b[^:]{0,80}(?=:)|" + _INJURIES_FROM + "|"
    # the dead told of as such: "the three coalition troops who died"
    r"who (?:died|were killed|was killed|lost their lives)|"
    r"brain injur\w*|TBIs?|concussions?|"
    # injuries made known after the event it names by its author: "eleven troops were hurt in Iran's missile attack"
    r"(?:were|had been|have been) (?:\w+ )?(?:hurt|injured|wounded) in \w+['’]s|"
    r"(?:rises?|rose|risen|climbs?|climbed|grows?|grew|jumps?|jumped) to|now says?|earlier accounts?|"
    r"(?:pass(?:es|ed)?|tops|topped|exceeds?|exceeded|surpass\w*) \d+|"
    # a group announcing that it halts its attacks after the event
    r"halts?|halted|halting|pauses?|paused|truce|suspends?|suspended|suspension|"
    # a happening of an earlier day named by that day: "this week's attack", "Sunday's vote"
    r"(?:(?:this|last) (?:week|month)|yesterday|last night|(?:mon|tues|wednes|thurs|fri|satur|sun)day)['’]s|"
    # briefings and weeklies: what happened, told again
    r"briefing|week in|weekly|what we know|^(?:\w+ ){0,2}week(?=:))\b",
    re.IGNORECASE,
)
_NEW_OCCURRENCE = re.compile(r"\b(?:again|another|second|third|fresh|renewed|new attacks?|latest)\b", re.IGNORECASE)


#: Injuries that are counted weeks after the blast that caused them: brain injuries diagnosed in the weeks after a
#: missile or rocket attack.
_LATE_TOLL = re.compile(
    r"\b(?:brain injur\w*|TBIs?|concussions?|diagnos\w*)\b|"
    # injuries made known after the event: "eleven troops were hurt in Iran's missile attack, military says"
    r"\b(?:were|was|had been|have been) (?:\w+ )?(?:hurt|injured|wounded)\b|"
    r"\b" + _INJURIES_FROM + r"\b|"
    # a count of the injured that keeps climbing
    r"\b(?:hurt|injured|wounded|injuries)\b.{0,60}\b(?:pass(?:es|ed)?|tops|topped|exceeds?|exceeded|surpass\w*|"
    r"(?:rises?|rose|climbs?|climbed) to) \d",
    re.IGNORECASE,
)


#: Words of a report of people killed (not hurt).
_DEAD = re.compile(
    r"\b(?:kill(?:s|ed|ing)?|dead|died|dies|deaths?|slain|fallen|fatalit\w*|casualties)\b", re.IGNORECASE
)


def reports_dead(text: str, *, news_only: bool = False) -> bool:
    """Whether the text reports people killed ("killing three", "the dead named", casualties), not only hurt; with
    ``news_only``, not counting what a sentence tells after "after" or "since" ("Taji hit again, three days after an
    attack there killed two Americans": the dead are the earlier attack's)."""
    return _DEAD.search(news_part(text) if news_only else text) is not None


#: What a first-day report of deaths names beside them: the weapon or the attack ("Rockets kill two US troops").
_ATTACK_WORD = re.compile(
    r"\b(?:rockets?|missiles?|drones?|attacks?|barrage|salvo|strikes?|blasts?|bombs?|fire|shelling|katyushas?)\b",
    re.IGNORECASE,
)


def tells_of_deadly_attack(title: str) -> bool:
    """Whether a headline is news of an attack that killed ("Rockets kill two US troops and a Briton at Iraqi
    base"), not a look back at its dead ("Pentagon names the two killed"), nor dead recalled as a cause."""
    news = news_part(title)
    return reports_killing(news) and _ATTACK_WORD.search(news) is not None and not is_follow_up(title)


def news_part(text: str) -> str:
    """``text`` without what its sentences tell after "after", "since" and the like: the news, not its cause."""
    return _CAUSE_CLAUSE.sub("", text)


#: From a word that introduces what came before the news to the end of its sentence.
_CAUSE_CLAUSE = re.compile(r"\b(?:after|since|following|in the wake of|in retaliation for|in response to)\b[^.\n|]*")


#: Words of people killed, as news ("killing three", "soldier killed"), and the words that say nobody was.
_KILLED = re.compile(r"\b(?:kill(?:s|ed|ing)?|dead|died|dies|deaths?|slain)\b", re.IGNORECASE)
_NOBODY_KILLED = re.compile(
    r"\b(?:no|none|nobody|without|not|no one|no-one)\b(?:\W+\w+){0,3}?\W+(?:kill\w*|dead|died|deaths?|casualt\w*)\b",
    re.IGNORECASE,
)


def reports_killing(title: str) -> bool:
    """Whether a headline reports people killed ("British soldier killed in rocket strike"), not that nobody was
    ("no casualties", "without killing anyone")."""
    return _KILLED.search(title) is not None and not reports_nobody_killed(title)


def reports_nobody_killed(title: str) -> bool:
    """Whether a headline says that nobody was killed ("no casualties", "causes no deaths")."""
    return _NOBODY_KILLED.search(title) is not None


#: Counts written as words ("nine attacks in a week").
_COUNT_WORDS = r"(?:three|four|five|six|seven|eight|nine|ten|eleven|twelve|\w+teen|twenty|thirty|forty)"
#: A tally of attacks: "23 attacks since Oct. 17", "attacked more than 40 times in three weeks", "the latest in a
#: string of attacks". It counts earlier happenings and names no new one of its own, or only the latest.
_TALLY = re.compile(
    r"\b(?:\d+(?:st|nd|rd|th)?|dozens?|more than \w+|over \d+|at least \d+|" + _COUNT_WORDS + r")\s+"
    r"(?:\w+\s+){0,3}?(?:attacks|times)\b"
    r"(?:\W+\w+){0,5}?\W+(?:since|in (?:\w+ )?(?:days|weeks|months)|in (?:a|one) (?:week|month)|"
    r"this (?:week|month|year))\b|"
    r"\b\d+(?:st|nd|rd|th)\b(?:\W+\w+){0,6}?\W+since\b|\b(?:string|wave|spate|series) of (?:\w+ ){0,2}attacks\b|"
    r"\blatest (?:in|of|at)\b|\bbrings? (?:the )?total\b",
    re.IGNORECASE,
)


def is_tally(title: str) -> bool:
    """Whether a headline counts attacks ("the 19th attack on US sites since October", "latest in a string")."""
    return _TALLY.search(title) is not None


#: Round-ups and logs by their name: "Iraq attacks log, 11 Nov", "Morning brief", "Weekend round-up".
_ROUND_UP = re.compile(r"\b(?:log|brief|round-?up)\b", re.IGNORECASE)


def looks_back(title: str) -> bool:
    """Whether a headline tells of happenings already reported: a round-up, a tally, a report on earlier ones."""
    return is_follow_up(title) or is_tally(title) or _ROUND_UP.search(title) is not None


def is_late_toll(title: str) -> bool:
    """Whether a follow-up headline counts injuries diagnosed weeks after the event (``is_follow_up`` first)."""
    if has_arabic(title):
        return _LATE_TOLL_AS.search(normalize(title)) is not None
    return _LATE_TOLL.search(title) is not None


#: A lead that names its happening by a day well before it was published: "hurt in Saturday's rocket attack" on a
#: Monday, "this week's rocket fire near the airport". (The day before is not enough: "Wednesday's strike" in a
#: report timed early on Thursday is the night's news, as "last night's" and "yesterday's" usually are.)
_EARLIER_DAY = re.compile(
    r"\b(?:in|from|after|since|during|by|of|on|over|about|including|condemn\w*|denounc\w*) (?:the )?"
    r"((?:this|last) (?:week|month)|(?:mon|tues|wednes|thurs|fri|satur|sun)day)['’]s\b",
    re.IGNORECASE,
)


def leads_back(lead: str, published: datetime | None = None) -> bool:
    """Whether the first sentence of a lead names its happening by a day at least two days before ``published``
    (``_EARLIER_DAY``; a weekday named without a publication time is not enough)."""
    first = first_sentence(lead)
    found = _EARLIER_DAY.search(first)
    if found is None or _NEW_OCCURRENCE.search(first) is not None:
        return False
    day = found.group(1).lower()
    if day not in WEEKDAYS:
        return True  # this week's, last month's
    if published is None:
        return False
    return (published.weekday() - WEEKDAYS.index(day)) % 7 >= 2


def is_follow_up(title: str) -> bool:
    """Whether a headline reports on an earlier happening (its dead named, mourned, condemned, investigated) and
    not a new occurrence ("again", "another", "second")."""
    return (_FOLLOW_UP.search(title) is not None or reports_earlier(title)) and _NEW_OCCURRENCE.search(title) is None
