"""Arabic, Persian and Sorani in the rule pack: alias files, ``languages`` on rules and selections, ambiguous names
with a fallback, clitics and compounds in matching, and the real pack's rules and hard negatives per language."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.core.errors import RuleError
from monitor.core.models import Article
from monitor.detection.matcher import Matcher
from monitor.detection.rulefile import load_rules
from tests.support.rulepack import RULE, pack

ROOT = Path(__file__).resolve().parents[1]
MATCHER = Matcher(load_rules([ROOT / "rules"]))

ALIASES = """\
aliases:
  language: ar
  names:
    united_states: [أمريكا, أمريكية]
    baghdad: [بغداد]
    sulaymaniyah_city: [سلێمانی]
  ambiguous:
    general: [سلێمانی]
  context:
    general: [general_cue]
"""
MORE_ENTITIES = """\
entities:
  - id: sulaymaniyah_city
    type: place
    names: [Sulaymaniyah]
  - id: general
    type: person
    names: [Qassem Soleimani]
  - id: general_cue
    type: other
    names: [قاسم, سەردار]
"""
ARABIC_RULE = """\
title: Test Arabic strike rule
id: test-strike-ar
description: Detects a US strike in Arabic, for tests.
tags: [event.us_strike_in_iraq]
level: 4
languages: [ar]
detection:
  us: {entities: [united_states]}
  strike: {keywords: [غارة~, صواريخ]}
  place: {affiliations: [iraq]}
  condition: near(us, strike, 3) and place
falsepositives: [none]
"""


def test_alias_files_add_names_to_entities_and_rules_restrict_to_languages(tmp_path: Path) -> None:
    folder = pack(tmp_path, RULE, ARABIC_RULE, MORE_ENTITIES)
    (folder / "aliases_ar.yaml").write_text(ALIASES)
    matcher = Matcher(load_rules([folder]))
    got = matcher.match("غارات أمريكية على مخزن في بغداد")
    assert got.alert and got.rules == ("test-strike-ar",) and got.entities == ("united_states", "baghdad")
    # told the article is Persian, the Arabic-only rule stays silent; the entities are still named
    persian = matcher.match("غارات أمريكية على مخزن في بغداد", lang="fa")
    assert not persian.alert and persian.entities == ("united_states", "baghdad")
    # a proclitic is detached when what remains is a word of the pack
    assert matcher.match("وبصواريخ أمريكية قصف في بغداد").alert
    # Sorani "سلێمانی" is the general in his context, else the city
    assert matcher.match("سەردار سلێمانی").entities == ("general",)
    assert matcher.match("بارینی بەفر لە سلێمانی").entities == ("sulaymaniyah_city",)


def test_selection_languages_count_hits_only_in_those_languages(tmp_path: Path) -> None:
    rule = RULE.replace("yemen: {keywords: [Yemen]}", "yemen: {keywords: [Yemen], languages: [en]}")
    matcher = Matcher(load_rules([pack(tmp_path, rule)]))
    assert not matcher.match("US airstrike hits depot in Baghdad, Yemen reacts").alert
    assert matcher.match("US airstrike hits depot in Baghdad, Yemen reacts", lang="ar").alert


def test_unknown_languages_and_alias_ids_are_problems_with_their_line(tmp_path: Path) -> None:
    folder = pack(tmp_path, ARABIC_RULE.replace("languages: [ar]", "languages: [ar, xx]"))
    (folder / "aliases.yaml").write_text("aliases:\n  language: ar\n  names:\n    nobody: [أحد]\n")
    with pytest.raises(RuleError) as caught:
        load_rules([folder])
    problems = [str(p) for p in caught.value.problems]
    assert any(p.startswith(f"{folder / 'rule0.yaml'}:6:") and "languages.1" in p for p in problems), problems
    assert any(p.startswith(f"{folder / 'aliases.yaml'}:4:") and "nobody" in p for p in problems), problems


# The real pack: what each language's rules must find, and the hard negatives they must leave alone.
ATTACK, STRIKE, THREAT = "attack_on_us_forces_in_iraq", "us_strike_in_iraq", "iran_retaliation_or_threat"
MATCHES = [
    ("ar", "عاجل | المقاومة الإسلامية في العراق: استهدف مجاهدونا بالطائرات المسيرة قاعدة حرير", ATTACK),
    ("ar", "سقوط صواريخ كاتيوشا على قاعدة عين الأسد التي تضم قوات أميركية غرب الأنبار", ATTACK),
    ("ar", "غارات أمريكية على مقرات لكتائب حزب الله في القائم قرب الحدود السورية", STRIKE),
    ("ar", "استشهاد أبو تقوى السعيدي بقصف أمريكي استهدف مقر الحشد الشعبي في بغداد", "high_value_target_killed"),
    ("fa", "فوری: حمله پهپادی به پایگاه اشغالگران آمریکایی در عین‌الاسد", ATTACK),
    ("fa", "حمله هوایی آمریکا به مقرهای کتائب حزب‌الله در جرف الصخر عراق", STRIKE),
    ("fa", "سپاه پاسداران: پایگاه‌های آمریکا در عراق هدف مشروع هستند و انتقام سخت می‌گیریم", THREAT),
    ("ckb", "بەپەلە: هێرشی درۆن کرایە سەر بنکەی هێزەکانی ئەمریکا لە فڕۆکەخانەی هەولێر", ATTACK),
    ("ckb", "هێرشی ئاسمانیی ئەمریکا بۆ سەر بارەگاکانی کەتائیب حیزبوڵڵا لە عێراق", STRIKE),
    # a teaser post: the base as a hashtag and the weapon as an emoji
    ("ar", "#التاجي 🚀🚀", ATTACK),
    # a faction making US forces a lawful target, in the headline or only in the post under its name
    ("ar", "الكعبي: قرار ترامب بشأن القدس يبيح استهداف القوات الأمريكية في العراق", THREAT),
    ("fa", "پاسخ نجباء به ترامپ: نظامیان آمریکایی در عراق در تیررس مقاومت", THREAT),
]  # fmt: skip
HARD_NEGATIVES = [
    ("ar", "إضراب المعلمين في البصرة للمطالبة بصرف الرواتب المتأخرة"),
    ("ar", "ضربة جزاء في الدقيقة الأخيرة تمنح المنتخب العراقي الفوز"),
    ("ar", "قصف تركي بطائرة مسيرة يستهدف قرية في قضاء زاخو بإقليم كردستان"),
    ("ar", "غارات إسرائيلية تستهدف مواقع قرب دمشق"),
    ("ar", "هجوم لداعش على نقطة للجيش العراقي في ديالى"),
    ("ar", "في الذكرى السنوية لاستشهاد قادة النصر قرب مطار بغداد"),
    ("fa", "اعتصاب کارگران نفت در بصره وارد سومین روز شد"),
    ("fa", "پهپاد ترکیه یک خودرو را در اقلیم کردستان عراق هدف قرار داد"),
    ("fa", "مراسم سالگرد شهادت سردار سلیمانی در تهران برگزار شد"),
    ("ckb", "مانگرتنی مامۆستایان لە سلێمانی بەردەوامە"),
    ("ckb", "درۆنی تورکی ئۆتۆمبێلێکی لە قەزای زاخۆ کردە ئامانج"),
    ("ckb", "پەنالتی یەکەم گۆڵی هەڵبژاردەی عێراقی تۆمار کرد"),
    # the US side's raids on the Islamic State, a strike on Syrian soil, another country's embassy
    ("ar", "أولى الغارات الأمريكية على داعش: مقاتلتان تقصفان مدفعية للتنظيم قرب أربيل"),
    ("ar", "عبوة ناسفة تستهدف عجلة للسفارة البريطانية على طريق المطار في بغداد"),
    # a bloc's ministers withdrawn, a membership ended, Iraq still needing foreign forces: no expulsion
    ("ar", "تحالف تقدم يعلن انسحاب وزرائه من الحكومة احتجاجاً على إنهاء عضوية رئيس البرلمان"),
    ("fa", "السودانی: عراق هنوز به نیروهای خارجی نیاز دارد"),
]


@pytest.mark.parametrize(("lang", "title", "event_type"), MATCHES)
def test_each_language_finds_its_events(lang: str, title: str, event_type: str) -> None:
    got = MATCHER.match_article(Article("a", "f", "u", None, title, "", "", None, None))  # type: ignore[arg-type]
    assert (got.alert, got.event_type) == (True, event_type)


@pytest.mark.parametrize(("lang", "title"), HARD_NEGATIVES)
def test_hard_negatives_in_each_language(lang: str, title: str) -> None:
    assert not MATCHER.match(title).alert


def test_a_faction_naming_us_forces_a_lawful_target_under_a_headline_of_its_name_only() -> None:
    post = "إن إعلان القدس عاصمة للكيان يمنحنا مبررا شرعيا لاستهداف القوات الأمريكية على أرض العراق."
    got = MATCHER.match("حركة النجباء | بيان الأمين العام", content=post)
    assert (got.alert, got.event_type) == (True, THREAT)


def test_rockets_hours_after_irans_missiles_are_the_news_not_the_missiles() -> None:
    got = MATCHER.match("دو راکت ساعاتی پس از حمله موشکی سپاه در منطقه سبز بغداد فرود آمد",
                        "راکت‌ها نزدیک سفارت آمریکا فرود آمدند و تلفاتی نداشتند.")  # fmt: skip
    assert (got.alert, got.event_type) == (True, "us_embassy_or_diplomatic_incident")


def test_a_strike_said_to_be_on_syrian_soil_is_not_one_in_iraq() -> None:
    title = "حمله هوایی به نیروهای حشد شعبی در مرز سوریه؛ ۲۲ نفر شهید شدند"
    inside = MATCHER.match(title, content="حشد شعبی گفت هواپیماهای آمریکایی مقر نیروهایش را در منطقه القائم عراق زدند.")
    beyond = MATCHER.match(title, content="حشد شعبی گفت هواپیماهای آمریکایی مقرش را نزدیک البوکمال، در خاک سوریه زدند.")
    assert inside.event_type == STRIKE and not beyond.alert


def test_english_rules_do_not_fire_on_arabic_script_and_arabic_rules_not_on_english() -> None:
    english = MATCHER.match("Rockets hit Ain al-Asad air base hosting US troops")
    assert english.alert and not any(r.endswith("arabic-script") for r in english.rules)
    arabic = MATCHER.match("سقوط صواريخ على قاعدة عين الأسد التي تضم قوات أمريكية")
    assert arabic.alert and all(r.endswith("arabic-script") for r in arabic.rules)
