"""One attack reported in Arabic, Persian and English is one event; a claim opens it as ``claimed`` and an official
confirmation revises it (real Redis through the processor, and the pure status rules of ``events.facts``)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import redis.asyncio as aioredis

from monitor.core.models import Article
from monitor.events.facts import event_status, is_follow_up, is_late_toll, revised_status, status_change
from monitor.processing.processor import Processor
from monitor.storage.keys import Keys
from tests.support.processing import default_processor
from tests.test_events import MATCHER, T0, FakeClock


def post(n: str, title: str, summary: str = "", *, feed: str, minutes: int = 0) -> Article:
    at = T0 + timedelta(minutes=minutes)
    return Article(f"u:{n}", feed, f"https://{feed}.example.org/{n}", None, title, summary, "", at, at)


CLAIM = post(
    "claim",
    "عاجل | المقاومة الإسلامية في العراق: استهدف مجاهدونا قاعدة حرير التي تضم قوات الاحتلال الأمريكي بطائرة مسيرة",
    "وذلك ردا على جرائم الاحتلال، وستستمر عملياتنا.",
    feed="telegram-channel",
)
PERSIAN = post(
    "fa",
    "حمله پهپادی به پایگاه حریر محل استقرار نظامیان آمریکایی در اقلیم کردستان عراق",
    "گروه مقاومت اسلامی عراق با صدور بیانیه‌ای اعلام کرد که پایگاه حریر را با پهپاد هدف قرار داده است.",
    feed="persian-outlet",
    minutes=40,
)
WIRE = post(
    "en",
    "Drone attack targets Harir base hosting US troops in Iraq's Kurdistan region",
    "The Pentagon confirmed that a one-way attack drone struck the base near Erbil; no US casualties were reported. "
    "The Islamic Resistance in Iraq claimed responsibility.",
    feed="wire",
    minutes=90,
)


@pytest.fixture
def processor(redis: aioredis.Redis) -> Processor:
    return default_processor(redis, MATCHER, FakeClock(T0 + timedelta(hours=2)))


async def test_an_arabic_claim_a_persian_report_and_the_english_wire_are_one_event(
    redis: aioredis.Redis, processor: Processor
) -> None:
    for article in (CLAIM, PERSIAN, WIRE):
        await processor.process([article])
    alerts = [json.loads(f[b"alert"]) for _, f in await redis.xrange(Keys().outbox)]
    events = [a for a in alerts if a["kind"] == "event"]
    assert {a["event_id"] for a in events} == {events[0]["event_id"]}
    first, last = events[0], events[-1]
    assert (first["status"], first["languages"], first["event_type"]) == (
        "claimed",
        ["ar"],
        "attack_on_us_forces_in_iraq",
    )
    assert first["title"] == CLAIM.title  # the original headline, with the type and entities in English
    assert {"harir_base", "islamic_resistance_in_iraq"} <= set(first["entities"])
    assert last["status"] == "confirmed" and last["languages"] == ["ar", "fa", "en"]
    assert "status: claimed -> confirmed" in last["changes"]


def test_status_rules() -> None:
    assert event_status("عاجل | استهدف مجاهدونا قاعدة عين الأسد") == "claimed"
    assert event_status("Kataib Hezbollah claimed responsibility for the rocket attack") == "claimed"
    assert event_status("Rockets hit a base hosting US troops near Baghdad airport") == "reported"
    assert event_status("أكدت وزارة الدفاع الأمريكية تعرض قاعدة حرير لهجوم بطائرة مسيرة") == "confirmed"
    assert event_status("پنتاگون حمله به پایگاه حریر را تکذیب کرد") == "denied"
    assert revised_status("claimed", "پێنتاگۆن هێرشەکەی پشتڕاست کردەوە") == "confirmed"
    assert revised_status("claimed", "البنتاغون ينفي تعرض قواته في العراق لأي هجوم") == "denied"
    assert revised_status("claimed", "The militia repeated its claim") == "claimed"
    assert revised_status("denied", "The Pentagon later confirmed the drone attack") == "confirmed"


def test_status_changes_that_revise() -> None:
    assert status_change("claimed", "confirmed") == "status: claimed -> confirmed"
    assert status_change("claimed", "confirmed", revise_on_confirmation=False) is None
    assert status_change("reported", "confirmed") is None  # "officially confirmed" says it already
    assert status_change("confirmed", "denied", revise_on_confirmation=False) == "status: confirmed -> denied"
    assert status_change("denied", "confirmed") == "status: denied -> confirmed"
    assert status_change("claimed", "claimed") is None


def test_arabic_script_follow_ups_are_known_by_their_headline() -> None:
    assert is_follow_up("تشييع جثامين ضحايا الضربة في بغداد")
    assert is_follow_up("مراسم تشییع پیکر شهدای حمله در کربلا برگزار شد")
    assert is_follow_up("حکوومەتی هەرێم هێرشەکەی ئیدانە کرد")
    assert not is_follow_up("سقوط صواريخ على قاعدة عين الأسد")


def test_arabic_script_brain_injury_counts_are_late_tolls() -> None:
    """Injuries counted weeks after the missiles reach back as far as the English "TBI cases rise to 109" does."""
    for toll in (
        "البنتاغون: ١٠٩ عسكريين أمريكيين أصيبوا بارتجاج في الدماغ جراء الصواريخ على عين الأسد",
        "پنتاگون: ۳۴ نظامی آمریکایی در حمله موشکی به عین‌الاسد دچار آسیب مغزی شدند",
        "ژمارەی ئەو سەربازانەی لە عەین ئەلئەسەد برینی مێشکیان هەیە گەیشتە ٦٤",
        "شمار مصدومان حمله موشکی به عین الاسد به ۱۰۹ نفر رسید",
    ):
        assert is_follow_up(toll) and is_late_toll(toll), toll
    assert not is_late_toll("سقوط صواريخ على قاعدة عين الأسد")
    assert not is_follow_up("ارتفاع أسعار النفط")
