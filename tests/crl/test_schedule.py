"""crl.schedule.plan: which CRLs are due, table-driven with explicit clocks."""

from __future__ import annotations

import pytest

from core.store.records import CrlState
from crl.schedule import Kind, plan

DAY = 86400
T = 1_800_000_000
PUBLISHED = CrlState(full_number=5, full_this_update=T, full_seq=10, changed_seq=10)
WAITING = CrlState(
    full_number=5, full_this_update=T, full_seq=10, changed_seq=12, pending_since=T + 100
)
WITH_DELTA = CrlState(
    full_number=5,
    full_this_update=T,
    full_seq=10,
    changed_seq=10,
    delta_number=6,
    delta_this_update=T,
    delta_seq=10,
)


@pytest.mark.parametrize(
    ("state", "now", "deltas", "want"),
    [
        (CrlState(), T, False, (Kind.FULL, "never published")),
        (PUBLISHED, T + 3600, False, None),
        (PUBLISHED, T + DAY, False, (Kind.FULL, "cadence")),
        (WAITING, T + 100 + 59, False, None),  # inside the change delay
        (WAITING, T + 100 + 60, False, (Kind.FULL, "revocations")),
        (WAITING, T + 100 + 60, True, (Kind.DELTA, "revocations")),
        (WITH_DELTA, T + 3600, True, None),
        (WITH_DELTA, T + DAY // 2, True, (Kind.DELTA, "delta refresh")),
        (PUBLISHED, T + 10, True, (Kind.DELTA, "delta refresh")),  # base newer than delta
        (WITH_DELTA, T + DAY, True, (Kind.FULL, "cadence")),
    ],
)
def test_plan(state: CrlState, now: int, deltas: bool, want: tuple[Kind, str] | None) -> None:
    jobs = plan(
        {3: state},
        [3],
        now=now,
        change_delay=60,
        cadence=DAY,
        delta_refresh=DAY // 2 if deltas else None,
    )
    assert [(j.kind, j.why) for j in jobs] == ([want] if want else [])
    assert all(j.partition == 3 for j in jobs)


def test_missing_files_forced_builds_and_unknown_partitions() -> None:
    states = {0: PUBLISHED, 1: PUBLISHED}
    common = {"now": T + 10, "change_delay": 60, "cadence": DAY, "delta_refresh": None}
    assert plan(states, range(3), **common) == [(2, Kind.FULL, "never published")]  # type: ignore[arg-type]
    assert [j.partition for j in plan(states, range(3), missing={1}, **common)] == [1, 2]  # type: ignore[arg-type]
    # A missing delta file is rebuilt as a delta, only where deltas are on.
    assert [
        (j.partition, j.kind, j.why) for j in plan(states, range(2), missing_delta={1}, **common)
    ] == []  # type: ignore[arg-type]
    with_deltas = {**common, "delta_refresh": DAY // 2}
    got = plan({0: WITH_DELTA, 1: WITH_DELTA}, range(2), missing_delta={1}, **with_deltas)  # type: ignore[arg-type]
    assert [(j.partition, j.kind, j.why) for j in got] == [(1, Kind.DELTA, "delta file missing")]
    # A missing full file wins: its rebuild writes the delta as well.
    got = plan({0: WITH_DELTA}, [0], missing={0}, missing_delta={0}, **with_deltas)  # type: ignore[arg-type]
    assert [(j.kind, j.why) for j in got] == [(Kind.FULL, "file missing")]
    forced = plan(states, range(3), force=True, **common)  # type: ignore[arg-type]
    assert [(j.partition, j.kind) for j in forced] == [(p, Kind.FULL) for p in range(3)]
