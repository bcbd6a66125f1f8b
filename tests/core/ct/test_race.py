"""A precertificate's race for SCTs as pure state: who is asked first, next, and when
it is over."""

from __future__ import annotations

from core.ct.policy import Log
from core.ct.race import Race
from core.ct.sct import Sct

DAY = 86400
LONG = 199 * DAY  # needs 3 SCTs
SHORT = 99 * DAY  # needs 2


def log(name: str, operator: str) -> Log:
    return Log(url=f"http://{name}.example", key=b"", operator=operator)


def sct(n: int = 0) -> Sct:
    return Sct(
        version=0,
        log_id=bytes(32),
        timestamp=n,
        extensions=b"",
        hash_algorithm=4,
        signature_algorithm=3,
        signature=b"sig",
    )


A1, A2, B1, C1 = log("a1", "A"), log("a2", "A"), log("b1", "B"), log("c1", "C")


def names(logs: list[Log]) -> list[str]:
    return [lg.url.split("//")[1].split(".")[0] for lg in logs]


def test_asks_as_many_as_needed_then_ends_when_met() -> None:
    race = Race([A1, B1, C1, A2], LONG)
    assert race.need == 3
    assert names(race.begin()) == ["a1", "b1", "c1"]
    assert race.answered(A1, sct()) == []
    assert race.answered(B1, sct()) == []
    assert not race.done
    assert race.answered(C1, sct()) == []
    assert race.done
    assert race.satisfied
    assert [lg.operator for lg, _ in race.got] == ["A", "B", "C"]


def test_a_failure_asks_the_next_at_once() -> None:
    race = Race([A1, B1, C1, A2], LONG)
    race.begin()
    assert names(race.answered(B1, None)) == ["a2"]
    assert race.failed == [B1]
    for lg in (A1, C1, A2):
        race.answered(lg, sct())
    assert race.satisfied  # A, C, A: three SCTs from two operators


def test_stagger_asks_one_more_while_unmet() -> None:
    race = Race([A1, B1, C1], SHORT)
    assert names(race.begin()) == ["a1", "b1"]
    assert names(race.stagger()) == ["c1"]  # a1 and b1 are slow
    assert race.stagger() == []  # nobody left
    race.answered(C1, sct())
    race.answered(A1, sct())
    assert race.done
    assert race.satisfied
    assert list(race.running) == ["http://b1.example"]  # abandoned
    assert race.answered(B1, sct()) == []  # late: not taken
    assert len(race.got) == 2


def test_two_scts_of_one_operator_do_not_meet_the_policy() -> None:
    race = Race([A1, A2, B1], SHORT)
    assert names(race.begin()) == ["a1", "a2"]
    race.answered(A1, sct())
    assert names(race.answered(A2, sct())) == ["b1"]  # count met, operators not
    assert not race.done
    race.answered(B1, sct())
    assert race.satisfied


def test_ends_unmet_when_every_log_failed() -> None:
    race = Race([A1, B1], SHORT)
    race.begin()
    assert race.answered(A1, None) == []
    assert not race.done  # b1 may still answer
    race.answered(B1, sct())
    assert race.done
    assert not race.satisfied


def test_no_eligible_log_ends_at_once() -> None:
    race = Race([], SHORT)
    assert race.begin() == []
    assert race.done
    assert not race.satisfied
