"""Arabic-script normalisation (``monitor.detection.scripts`` through ``text.normalize``) and language detection."""

from __future__ import annotations

import pytest

from monitor.core.models import Article
from monitor.detection.language import article_language, detect_language
from monitor.detection.scripts import arabic_forms, detach_clitics, joined_forms
from monitor.detection.text import inflections, normalize


def words(text: str) -> list[str]:
    return normalize(text).split()


@pytest.mark.parametrize(
    ("variants", "folded"),
    [
        (["أمريكا", "إمريكا", "آمريكا", "ٱمريكا", "امريكا"], "امریکا"),  # alef and hamza forms
        (["مستشفى", "مستشفي", "مستشفی"], "مستشفی"),  # alef maqsura, Arabic and Persian yeh
        (["كركوك", "کرکوک"], "کرکوک"),  # Arabic and Persian kaf
        (["قاعدة", "قاعده"], "قاعده"),  # teh marbuta matched as heh
        (["مَدْرَسَةٌ", "مـــدرسة", "مدرسة"], "مدرسه"),  # tashkeel and tatweel dropped
        (["خانۀ", "خانه"], "خانه"),  # Persian heh with yeh above
        (["ﺑﻐﺪﺍﺩ", "بغداد"], "بغداد"),  # presentation forms
    ],
)
def test_letters_that_are_one_letter_fold_to_one(variants: list[str], folded: str) -> None:
    assert {normalize(v).strip() for v in variants} == {folded}


def test_sorani_letters_stay_distinct() -> None:
    # ێ is not ی, ڵ is not ل, ڕ is not ر, ۆ is not و, ە is not ه: the city is not the general.
    assert normalize("سلێمانی") != normalize("سلیمانی")
    for sorani, plain in [("ڵ", "ل"), ("ڕ", "ر"), ("ۆ", "و"), ("ە", "ه")]:
        assert normalize(f"با{sorani}ب") != normalize(f"با{plain}ب")


def test_digits_and_controls() -> None:
    assert words("سقط ٣ صواريخ و۱۲ قذيفة") == ["سقط", "3", "صواریخ", "و12", "قذیفه"]
    # bidi marks and embeddings, zero-width space and joiner vanish; they never split or glue words
    assert normalize("\u202bقاعدة\u202c \u200fحرير\u200e\u200b") == normalize("قاعدة حرير")
    assert normalize("عين\u200dالأسد") == normalize("عينالأسد")


def test_zwnj_compounds_match_apart_joined_or_with_a_non_joiner() -> None:
    spaced = normalize("حزب الله")
    assert normalize("حزب\u200cالله") == spaced
    assert normalize("حزبالله") in joined_forms(spaced)


def test_the_article_and_a_proclitic_before_it_are_not_part_of_the_word() -> None:
    assert words("القاعدة والقاعدة بالقاعدة فالقاعدة للقوات وللقوات") == ["قاعده"] * 4 + ["قوات"] * 2
    assert words("الله") == ["الله"]  # three letters must remain: the name of God keeps its article


def test_a_lone_proclitic_is_detached_only_to_make_a_word_of_the_pack() -> None:
    vocabulary = frozenset({"صواریخ", "قوات"})
    assert detach_clitics(" وصواریخ بصواریخ لقوات وبغداد ", vocabulary) == " صواریخ صواریخ قوات وبغداد "
    assert detach_clitics(" بغداد ", frozenset({"غداد"})) == " غداد "  # only for words not in the pack
    assert detach_clitics(" بغداد ", frozenset({"بغداد", "غداد"})) == " بغداد "
    # Iraqi speech writes "on the" as one word with the noun: "عالتاجي" is "على التاجي"
    assert detach_clitics(" عالتاجی عالم ", frozenset({"تاجی"})) == " تاجی عالم "
    # words that only look like a proclitic and a word of the pack: Persian "for" and "tomorrow" stay whole
    assert detach_clitics(" برای فردا بصواریخ ", frozenset({"رای", "ردا", "صواریخ"})) == " برای فردا صواریخ "


def test_two_dots_separate_the_parts_of_a_post_without_ending_a_sentence() -> None:
    assert "|" not in normalize("بالمسيرات.. قاعدة الأسد تحت النيران")
    assert "|" in normalize("صواريخ على القاعدة. لا إصابات")


def test_tilde_adds_the_common_suffixes_of_the_three_languages() -> None:
    forms = {normalize(f).strip() for f in inflections("هجوم~")}
    assert {"هجوم", "هجومات", "هجومها"} <= forms  # Arabic
    forms = {normalize(f).strip() for f in inflections("ضربة~")}
    assert {"ضربه", "ضربات", "ضربتین"} <= forms  # a feminine stem takes the suffixes on its t
    forms = {normalize(f).strip() for f in inflections("هێرش~")}
    assert {"هێرش", "هێرشەکە", "هێرشەکان", "هێرشێک"} <= forms  # Sorani
    assert {"موشکها", "موشکهای"} <= {normalize(f).strip() for f in arabic_forms("موشک")}  # Persian
    # Sorani postpositions close «لە … دا» and «لە … ەوە» on the word: «لە هێرشێکی ئەمریکادا»
    forms = {normalize(f).strip() for f in inflections("ئەمریکا~")}
    assert {normalize(w).strip() for w in ("ئەمریکادا", "ئەمریکاوە", "ئەمریکاش")} <= forms
    # after a vowel the indefinite is «یەک»: «تەقینەوەیەک», «بنکەیەک»
    assert normalize("تەقینەوەیەک").strip() in {normalize(f).strip() for f in inflections("تەقینەوە~")}


def test_caret_stands_for_an_arabic_verb_family() -> None:
    forms = {normalize(f).strip() for f in inflections("^استهدف")}
    # the past's persons, the present's and the future's, and an object pronoun after either
    assert {"استهدف", "استهدفت", "استهدفوا", "استهدفنا", "یستهدف", "تستهدف", "نستهدف", "یستهدفون"} <= forms
    assert {"ستستهدف", "سنستهدف", "استهدفها", "استهدفوه", "سنستهدفها"} <= forms
    assert {"اطلقت", "یطلق", "تطلق", "اطلقوا"} <= {normalize(f).strip() for f in inflections("^أطلق")}
    weak = {normalize(f).strip() for f in inflections("^أجلى")}
    assert {"اجلی", "اجلت", "اجلوا", "تجلی", "یجلی"} <= weak  # a weak verb's ی falls before ت and و
    assert inflections("^attack") == ["^attack"]  # Latin words are left to the English rules


def test_sorani_typed_on_an_arabic_keyboard_is_respelled() -> None:
    # ه for ە: with a non-joiner inside a word, plain at its end; Arabic ك ي fold as they always do.
    assert normalize("سوپاي پاسداران بنكه‌ي عه‌ين ئه‌سه‌دي كرده ئامانج") == normalize(
        "سوپای پاسداران بنکەی عەین ئەسەدی کردە ئامانج"
    )
    assert normalize("درۆن كرانه ئامانج") == normalize("درۆن کرانە ئامانج")
    # Persian keeps its ه before a non-joiner, and Arabic its final ه: neither looks Sorani.
    assert normalize("حمله‌ها به پایگاه") == " حمله ها به پایگاه "
    assert normalize("قاعدة عين الأسد وأطلق عليه") == " قاعده عین اسد واطلق علیه "


def test_latin_inside_arabic_text_keeps_its_english_normal_form() -> None:
    assert words("أسقطت منظومة C-RAM طائرة فوق U.S. Embassy") == [
        "اسقطت", "منظومه", "c", "ram", "طایره", "فوق", "usa", "embassy",
    ]  # fmt: skip


def test_english_normal_form_is_unchanged() -> None:
    assert normalize("U.S. strikes “Kataib Hezbollah” — in Iraq's al-Qaim") == (
        " usa strikes kataib hezbollah in iraq al qaim "
    )


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("Rockets hit a base hosting US troops in western Iraq", "en"),
        ("سقطت ثلاثة صواريخ على القاعدة التي تضم قوات أمريكية في محافظة الأنبار", "ar"),
        ("سه موشک به پایگاهی که نیروهای آمریکایی در آن مستقر هستند اصابت کرد", "fa"),
        ("سێ مووشەک بەر بنکەیەک کەوتن کە هێزەکانی ئەمریکای تێدایە", "ckb"),
        ("عاجل | استهدفنا قاعدة حرير", "ar"),
        ("فوری: حمله به پایگاه حریر", "fa"),
        ("بەپەلە: هێرش بۆ سەر بنکەی حەریر", "ckb"),
        ("سوپاي پاسداران بنكه‌ي عه‌ين ئه‌سه‌دي به مووشه‌ك كرده ئامانج", "ckb"),  # Sorani on an Arabic keyboard
        ("مامۆستاياني سلێماني بۆ پێنجه‌مين ڕۆژ مانيان گرتووه", "ckb"),
        ("دوای مووشه‌كه‌كانی شه‌وی شه‌ممه‌، كاری بنكه‌كه‌ به‌رده‌وامه‌", "ckb"),  # no Sorani letter but its ه‌ك
        ("خانه‌های کارگران در شهر کرمانشاه ساخته شد", "fa"),
        ("قال رئيس حكومة إقليم كردستان في مؤتمر صحفي إن قناة ڕووداو نقلت الخبر عنه", "ar"),  # a Kurdish name
        ("Iraq's parliament, known in Arabic as مجلس النواب, voted on Sunday to end the mission", "en"),
        ("", None),
        ("2024 - 5", None),
    ],
)
def test_language_detection(text: str, lang: str | None) -> None:
    assert detect_language(text) == lang


def test_the_text_decides_over_a_feed_label_for_arabic_script_only() -> None:
    def art(title: str, language: str | None) -> Article:
        return Article("a", "f", "u", None, title, "", "", None, None, language)  # type: ignore[arg-type]

    assert article_language(art("غارة أمريكية في بغداد", "en-US")) == "ar"
    assert article_language(art("Frappe américaine en Irak", "fr-FR")) == "fr"
    assert article_language(art("US strike in Iraq", None)) == "en"


def test_weapon_emoji_in_arabic_script_text_read_as_their_words() -> None:
    """A faction's teaser post "#التاجي 🚀🚀" names the base and the weapon; English text keeps its emoji."""
    assert normalize("#التاجي 🚀🚀").split() == ["تاجی", "صاروخ", "صاروخ"]
    assert normalize("#عين_الأسد 🛩️💥").split()[-2:] == [normalize("مسيرة").strip(), "انفجار"]
    assert "صاروخ" not in normalize("SpaceX launch 🚀")
