from monitor.detection.text import inflections, normalize


def test_spellings_meet_in_one_form() -> None:
    assert normalize("Kata’ib Hezbollah") == normalize("KATAIB-HEZBOLLAH") == " kataib hezbollah "
    assert normalize("Qāsem Soleimānī") == " qasem soleimani "
    assert normalize("Ain al-Asad") == normalize("Ain al Asad")


def test_the_country_never_meets_the_pronoun() -> None:
    assert normalize("U.S. troops") == normalize("US troops") == normalize("USA troops") == " usa troops "
    assert normalize("let us know") == " let us know "
    assert normalize("USAID and BUS") == " usaid and bus "


def test_possessives_acronyms_and_sentences() -> None:
    assert normalize("Iraq's PM met the U.N. envoy.") == " iraq pm met the un envoy "
    assert (
        normalize("Gen. Soleimani died. Iran vowed revenge!\nNext")
        == " gen soleimani died | iran vowed revenge | next "
    )
    assert normalize("") == "  "


def test_inflections_expand_each_marked_word() -> None:
    assert {"attack", "attacks", "attacked", "attacking"} <= set(inflections("attack~"))
    assert "hitting" in inflections("hit~")
    assert "suspending attacks" in inflections("suspend~ attack~")
    assert inflections("plain phrase") == ["plain phrase"]


def test_a_stem_cut_before_its_suffix_matches_the_words_that_complete_it() -> None:
    """``retaliat~`` is the verb and the noun, ``facilit~`` and ``injur~`` their plurals; a whole word is untouched."""
    assert {"retaliate", "retaliated", "retaliation", "retaliatory"} <= set(inflections("retaliat~"))
    assert {"facility", "facilities"} <= set(inflections("facilit~"))
    assert {"injury", "injuries", "injured"} <= set(inflections("injur~"))
    assert {"announcement", "announced"} <= set(inflections("announc~"))
    assert {"defense", "defence", "defensive"} <= set(inflections("defen~"))
    whole = {"strike", "strikes", "striked", "strikeed", "strikees", "striking", "strikeing"}
    assert set(inflections("strike~")) == whole


def test_every_typographic_quote_and_dash_and_mark_folds() -> None:
    for quote in "\u2018\u2019\u02bc\u02bb\u00b4\u2032\u02be\u02bf":
        assert normalize(f"Kata{quote}ib and Iran{quote}s") == " kataib and iran "
    for dash in "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u00a0":
        assert normalize(f"al{dash}Asad") == " al asad "
    assert normalize("Sulayma\u0304ni\u0304, Sulaym\u0101n\u012b and \ufb01ve cafe\u0301s") == (
        " sulaymani sulaymani and five cafes "
    )
