"""The answer checks of `make eval`, on answers written for them: each check fails the
answer it is there to catch and passes a good one."""

from __future__ import annotations

import json

from agents.local_model import CUT_LENGTH, CUT_LOOPING
from tests.eval.run_answers import CASES, check

ADA = {"kind": "recall", "turns": ["My name is Ada. What is my name?"], "expect_any": ["Ada"]}
FRENCH = {"kind": "translate", "turns": ["Translate into French: Good morning, my friend."],
          "expect_any": ["bonjour", "ami"]}


def test_good_answers_pass() -> None:
    assert check(ADA, "Your name is Ada.") == []
    assert check(FRENCH, "« Bonjour, mon ami. »") == []
    assert check({"kind": "chat", "turns": ["Hello!"]}, "Hello! How can I help you?") == []
    assert check({"expect_any": ["estacion"]}, "¿Dónde está la estación de tren?") == []


def test_each_failure_is_caught() -> None:
    loop = "Translate this into Portuguese:\nA: Ada\n" * 4
    assert any(f.startswith("loops") for f in check(ADA, loop))
    assert any(f.startswith("loops") for f in check(ADA, "Your name is Ada." + CUT_LOOPING))
    assert "ran to the length cap" in check(ADA, "Ada is " + CUT_LENGTH.format(tokens=512))
    assert check(ADA, "My name is Elena.") == ["none of ['Ada']"]
    assert check(FRENCH, "Good morning, my friend, in French.") == [
        "none of ['bonjour', 'ami']"]
    assert check({"kind": "chat", "turns": ["Hello!"]}, "Hi") == ["not an answer in words"]


def test_the_set_has_forty_cases_or_more_of_each_kind_asked() -> None:
    cases = [json.loads(line) for line in CASES.read_text().splitlines() if line.strip()]
    kinds = {c["kind"] for c in cases}
    assert len(cases) >= 40 and kinds == {"recall", "translate", "chat"}
    assert all(c["expect_any"] for c in cases if c["kind"] in {"recall", "translate"})
    assert any(len(c["turns"]) > 1 for c in cases)  # recalled across turns, not only within
