"""A tiny rule pack (a few entities and one strike rule) for tests of the rule format and the matcher."""

from __future__ import annotations

from pathlib import Path

ENTITIES = """\
entities:
  - id: united_states
    type: country
    affiliation: us
    names: [US, United States, American]
  - id: donald_trump
    type: person
    affiliation: us
    names: [Donald Trump, Trump]
  - id: baghdad
    type: place
    affiliation: iraq
    names: [Baghdad]
  - id: pmf
    type: militia
    affiliation: iraq
    names: [Popular Mobilization Forces]
    ambiguous: [PMF]
    context: [baghdad]
"""

RULE = """\
title: Test strike rule
id: test-strike
description: Detects a US strike near Baghdad, for tests.
tags: [event.us_strike_in_iraq]
level: 4
detection:
  us: {entities: [united_states]}
  strike: {keywords: [strike~, airstrike~]}
  place: {affiliations: [iraq]}
  yemen: {keywords: [Yemen]}
  condition: near(us, strike, 3) and sentence(strike, place) and not yemen
severity:
  - when: title(place)
    add: 1
    reason: place in the headline
falsepositives: [none]
examples:
  match:
    - title: US airstrike hits depot in Baghdad
  no_match:
    - title: US strikes Yemen, Baghdad reacts
"""


def pack(tmp_path: Path, *docs: str) -> Path:
    folder = tmp_path / "rules"
    folder.mkdir(parents=True)
    (folder / "entities.yaml").write_text(ENTITIES)
    for i, doc in enumerate(docs):
        (folder / f"rule{i}.yaml").write_text(doc)
    return folder
