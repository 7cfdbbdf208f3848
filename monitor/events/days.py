"""When a report says its happening was: the weekday or the date its headline or lead names, read as a day of
Iraq's calendar. Pure: headlines and leads only."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone

__all__ = ["WEEKDAYS", "day_start", "first_sentence", "local_day", "told_day"]

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def first_sentence(lead: str) -> str:
    """A lead's first sentence (its first 400 characters at most)."""
    return re.split(r"(?<=[.!?])\s|\n", lead.strip(), maxsplit=1)[0][:400]


#: A weekday a report names its happening by ("Friday's call", "the rockets that hit the airport on Tuesday"),
#: unless it is a day to come ("next Tuesday", "until Friday") or the start of a run ("the second since Friday").
_TOLD_DAY = re.compile(
    r"(?<!next )(?<!until )(?<!by )(?<!from )(?<!coming )(?<!since )\b((?:mon|tues|wednes|thurs|fri|satur|sun)day)\b",
    re.IGNORECASE,
)
#: The same weekdays in Arabic, Persian and Sorani, Monday first ("فجر السبت", "حمله روز سه‌شنبه", "بەیانی
#: هەینی"): one spelling group per day, two-word forms before the one-word day they end with, and no day read
#: inside a longer word; a day to come ("السبت المقبل", "شنبه آینده", "شەممەی داهاتوو") is not one.
_SCRIPT_DAYS = (
    ("الاثنين", "الإثنين", "دوشنبه", "دو شنبه", "دوشەممە", "دووشەممە", "دوو شەممە"),
    ("الثلاثاء", "سه‌شنبه", "سه شنبه", "سەشنبه", "سێشەممە", "سێ شەممە"),
    ("الأربعاء", "الاربعاء", "چهارشنبه", "چهار شنبه", "چهار‌شنبه", "چوارشەممە", "چوار شەممە"),
    ("الخميس", "پنجشنبه", "پنج‌شنبه", "پنج شنبه", "پێنجشەممە", "پێنج شەممە"),
    ("الجمعة", "جمعه", "هەینی"),
    ("السبت", "شنبه", "شەممە"),
    ("الأحد", "الاحد", "یکشنبه", "یک‌شنبه", "یک شنبه", "یەکشەممە", "یەک شەممە"),
)
_SCRIPT_DAY_OF = {name: index for index, names in enumerate(_SCRIPT_DAYS) for name in names}
_TOLD_SCRIPT_DAY = re.compile(
    r"(?<![\w\u200c])("
    + "|".join(re.escape(n) for n in sorted(_SCRIPT_DAY_OF, key=len, reverse=True))
    + r")(?:\u200c?ی)?(?![\w\u200c])(?! ?(?:المقبل|القادم|آینده|داهاتوو))"
)
#: Iraq's time: the days reports name are Iraq's days.
_LOCAL = timezone(timedelta(hours=3))


#: A date a report names its happening by: "the 29 Dec blasts", "the Jan. 8 missile attack", "on December 20".
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTH = r"(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)(?:uary|ruary|ch|il|e|y|ust|t|tember|ober|ember)?\b\.?"
_TOLD_DATE = re.compile(rf"\b(?:(\d{{1,2}}) {_MONTH}|{_MONTH} (\d{{1,2}})\b(?!:\d))", re.IGNORECASE)
#: How far back a named date may lie to be the day of the happening a report tells of (a later one is a deadline).
_DATE_REACH = timedelta(days=60)


#: A span back to the happening a headline looks back at: "Balad, two weeks on", "Two weeks after the missile strike,
#: Erbil counts the cost", "ten days after the vote". At least a week (a new attack's report recalls one "three days
#: after" another) and at most two months; the day it gives is an estimate (a fortnight is 13 to 15 days), which
#: ``in_reach`` takes as the day the report names. A lead's spans are not read: a new report recalls the last one.
_SPAN = re.compile(
    r"\b(a|one|two|three|four|five|six|seven|eight|nine|ten|\d{1,2}) (day|week|month|fortnight)s? (?:after|on|later)\b",
    re.IGNORECASE,
)
_SPAN_COUNT = {"a": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
               "nine": 9, "ten": 10}  # fmt: skip
_SPAN_DAYS = {"day": 1, "week": 7, "fortnight": 14, "month": 30}


def told_day(title: str, lead: str, published: datetime | None) -> date | None:
    """The (Iraqi) date of the weekday a report's headline, else its lead's first sentence, names when that is one to
    six days before the day it was published ("After Friday's call, ..." on a Monday: that Friday), of the one
    date it names up to two months back ("Convoy IEDs, 29 Dec: ..." on 30 December), or that the one span its headline
    looks back by reaches ("two weeks on"); None when it names none, several, or today."""
    if published is None:
        return None
    local = local_day(published)
    # The headline first, weekday or date: "... after Jan. 8 attack" over a lead's "CENTCOM said on Thursday".
    for text, is_title in ((title, True), (first_sentence(lead), False)):
        named = _days_named(text)
        if len(named) == 1:
            back = (local.weekday() - WEEKDAYS.index(named.pop())) % 7
            return local - timedelta(days=back) if back else None
        if named:
            return None  # a roundup's several days ("Harir Friday, Al-Asad Saturday")
        told = _told_date(text, local) or (_told_span(text, local) if is_title else None)
        if told is not None:
            return told
    return None


def _told_span(text: str, local: date) -> date | None:
    """The day ``text`` looks back to by the one span it names ("two weeks on"), counted back from ``local``."""
    spans = {m.group(1, 2) for m in _SPAN.finditer(text)}
    if len(spans) != 1:
        return None
    count, unit = spans.pop()
    back = timedelta(days=(int(count) if count.isdigit() else _SPAN_COUNT[count.lower()]) * _SPAN_DAYS[unit.lower()])
    return local - back if timedelta(days=7) <= back <= _DATE_REACH else None


#: "The Pentagon said Monday that 109 ...": the day of a statement, not of the happening it tells of (unless the
#: day is the happening's own: "officials said Monday's attack ...").
_SAID = re.compile(r"\b(?:said|says|announced|confirmed|reported|stated|told reporters)(?: on)? $", re.IGNORECASE)


def _days_named(text: str) -> set[str]:
    """The weekdays ``text`` names (English names), in any of the four languages."""
    named = {
        m.group(1).lower()
        for m in _TOLD_DAY.finditer(text)
        if not _SAID.search(text, max(0, m.start() - 30), m.start()) or text[m.end() : m.end() + 2] in ("'s", "’s")
    }
    return named | {WEEKDAYS[_SCRIPT_DAY_OF[m]] for m in _TOLD_SCRIPT_DAY.findall(text)}


def _told_date(text: str, local: date) -> date | None:
    """The one earlier date ``text`` names (day and month, in the year before ``local`` when later in the year)."""
    days = set()
    for m in _TOLD_DATE.finditer(text):
        if text[max(0, m.start() - 6) : m.start()].lower() == "since ":
            continue  # "the second attack since July 16": when a run began, not this report's day
        day, month = (m.group(1), m.group(2)) if m.group(1) else (m.group(4), m.group(3))
        number, month_index = int(day), _MONTHS.index(month.lower()) + 1
        try:
            named = date(local.year, month_index, number)
            if named > local:
                named = date(local.year - 1, month_index, number)
        except ValueError:
            continue  # "31 Feb": not a date
        if timedelta(days=1) <= local - named <= _DATE_REACH:
            days.add(named)
    return days.pop() if len(days) == 1 else None


def local_day(moment: datetime) -> date:
    """The Iraqi date of ``moment``."""
    return moment.astimezone(_LOCAL).date()


def day_start(day: date) -> datetime:
    """When the Iraqi date ``day`` begins."""
    return datetime.combine(day, datetime.min.time(), _LOCAL)
