"""Which CRLs to build now: a pure function of the partitions' states and the clock.

The updater and `hanko crl` both ask it; the rules are the BR's (a revocation reaches a
CRL within 24 hours, every CRL is replaced at least every 7 days and well before its
nextUpdate) with the delays from config.
"""

from __future__ import annotations

import enum
from collections.abc import Container, Iterable, Mapping
from typing import NamedTuple

from core.store.records import CrlState


class Kind(enum.Enum):
    FULL = "full"
    DELTA = "delta"


class Job(NamedTuple):
    partition: int
    kind: Kind
    why: str


def pending(state: CrlState) -> bool:
    """A revocation is stored that no published CRL (full or delta) lists yet."""
    return state.changed_seq > max(state.full_seq, state.delta_seq)


def plan(
    states: Mapping[int, CrlState],
    partitions: Iterable[int],
    *,
    now: int,
    change_delay: int,
    cadence: int,
    delta_refresh: int | None,
    missing: Container[int] = (),
    missing_delta: Container[int] = (),
    force: bool = False,
) -> list[Job]:
    """The builds due at `now` (epoch seconds), partition by partition.

    A full CRL is due if the partition never had one, its file is `missing`, it is
    `cadence` old, or (without deltas) a revocation has waited `change_delay`. With
    deltas (`delta_refresh` set: rebuild an unchanged delta that old), a waiting
    revocation goes out in a delta and full CRLs follow the cadence; a delta whose file
    is missing (`missing_delta`) is rebuilt at once, since relying parties that follow
    the full CRL's freshest-CRL pointer would otherwise get nothing until the next
    refresh. `force` rebuilds every partition in full.
    """
    jobs: list[Job] = []
    for p in partitions:
        st = states.get(p, CrlState())
        if force:
            jobs.append(Job(p, Kind.FULL, "forced"))
        elif st.full_number == 0:
            jobs.append(Job(p, Kind.FULL, "never published"))
        elif p in missing:
            jobs.append(Job(p, Kind.FULL, "file missing"))
        elif now - st.full_this_update >= cadence:
            jobs.append(Job(p, Kind.FULL, "cadence"))
        elif pending(st) and now >= st.pending_since + change_delay:
            kind = Kind.FULL if delta_refresh is None else Kind.DELTA
            jobs.append(Job(p, kind, "revocations"))
        elif delta_refresh is not None and p in missing_delta:
            jobs.append(Job(p, Kind.DELTA, "delta file missing"))
        elif delta_refresh is not None and (
            st.delta_number < st.full_number or now - st.delta_this_update >= delta_refresh
        ):
            jobs.append(Job(p, Kind.DELTA, "delta refresh"))
    return jobs
