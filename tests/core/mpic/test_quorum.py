"""The BR 3.2.2.9 quorum, pure: how many of the perspectives asked may not corroborate,
the two-RIR rule, the floor of perspectives asked, and what a refusal says."""

from __future__ import annotations

import datetime as dt

import pytest

from core.config.schedule import perspectives_required
from core.mpic.quorum import Answer, allowed_failures, judge


def answers(*spec: tuple[str, str, bool]) -> list[Answer]:
    return [
        Answer(code=c, rir=r, corroborates=ok, detail="" if ok else "saw other")
        for c, r, ok in spec
    ]


@pytest.mark.parametrize(("asked", "allowed"), [(1, 0), (2, 1), (3, 1), (5, 1), (6, 2), (9, 2)])
def test_the_br_table_of_allowed_failures(asked: int, allowed: int) -> None:
    assert allowed_failures(asked) == allowed


@pytest.mark.parametrize(
    ("day", "required"),
    [
        ("2025-09-14", 0),
        ("2025-09-15", 2),
        ("2026-03-15", 3),
        ("2026-06-15", 4),
        ("2026-12-14", 4),
        ("2026-12-15", 5),
        ("2030-01-01", 5),
    ],
)
def test_the_schedule_of_required_perspectives(day: str, required: int) -> None:
    at = dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC)
    assert perspectives_required(at) == required


def test_five_with_one_failure_stand_and_two_do_not() -> None:
    one = answers(
        ("a", "APNIC", True),
        ("b", "RIPE", True),
        ("c", "ARIN", True),
        ("d", "ARIN", True),
        ("e", "RIPE", False),
    )
    v = judge(one, required=5)
    assert v.corroborated
    assert v.summary() == "4/5, RIRs APNIC, ARIN, RIPE"
    two = answers(
        ("a", "APNIC", True),
        ("b", "RIPE", True),
        ("c", "ARIN", True),
        ("d", "ARIN", False),
        ("e", "RIPE", False),
    )
    v = judge(two, required=5)
    assert not v.corroborated
    assert v.failed == ("d", "e")
    assert v.why == {"d": "saw other", "e": "saw other"}
    assert "d: saw other; e: saw other" in v.reason


def test_six_allow_two_failures() -> None:
    spec = [(c, "APNIC" if i < 3 else "ARIN", i < 4) for i, c in enumerate("abcdef")]
    assert judge(answers(*spec), required=5).corroborated


def test_fewer_asked_than_required_never_stand() -> None:
    v = judge(answers(("a", "APNIC", True), ("b", "RIPE", True), ("c", "ARIN", True)), required=4)
    assert not v.corroborated
    assert "3 remote perspectives asked, the BR require 4" in v.reason


def test_corroboration_from_one_rir_does_not_stand() -> None:
    v = judge(answers(("a", "APNIC", True), ("b", "APNIC", True), ("c", "RIPE", False)), required=3)
    assert not v.corroborated
    assert v.rirs == ("APNIC",)


def test_unanswered_only_refusals_are_retryable() -> None:
    down = [
        Answer(code="d", rir="ARIN", corroborates=False, detail="unreachable", reachable=False),
        Answer(code="e", rir="RIPE", corroborates=False, detail="late", reachable=False),
    ]
    v = judge(
        answers(("a", "APNIC", True), ("b", "RIPE", True), ("c", "ARIN", True)) + down, required=5
    )
    assert not v.corroborated
    assert v.unanswered
    mixed = down[:1] + answers(
        ("a", "APNIC", True), ("b", "RIPE", True), ("c", "ARIN", True), ("e", "RIPE", False)
    )
    assert not judge(mixed, required=5).unanswered
