"""The BR validity schedule (ballot SC-081) as configuration data; the default is the BR's.

The rules over it (which entry is in force, the longest validity) are issuance policy:
core/issuance/validity.py.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import msgspec

from core.base.errors import PolicyError


class ScheduleEntry(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    since: dt.date  # in force from 00:00 UTC of this date
    max_days: int  # longest certificate validity
    dcv_reuse_days: int  # how long a domain validation may be reused


BR_SCHEDULE = (
    ScheduleEntry(since=dt.date(2020, 9, 1), max_days=398, dcv_reuse_days=398),
    ScheduleEntry(since=dt.date(2026, 3, 15), max_days=200, dcv_reuse_days=200),
    ScheduleEntry(since=dt.date(2027, 3, 15), max_days=100, dcv_reuse_days=100),
    ScheduleEntry(since=dt.date(2029, 3, 15), max_days=47, dcv_reuse_days=10),
)


class MpicEntry(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    since: dt.date  # in force from 00:00 UTC of this date
    perspectives: int  # remote perspectives that must be asked, at least


# BR 3.2.2.9 (ballot SC-067): multi-perspective issuance corroboration, phased in.
MPIC_SCHEDULE = (
    MpicEntry(since=dt.date(2025, 9, 15), perspectives=2),
    MpicEntry(since=dt.date(2026, 3, 15), perspectives=3),
    MpicEntry(since=dt.date(2026, 6, 15), perspectives=4),
    MpicEntry(since=dt.date(2026, 12, 15), perspectives=5),
)


def perspectives_required(at: dt.datetime, schedule: Sequence[MpicEntry] = MPIC_SCHEDULE) -> int:
    """The remote perspectives the BR require on `at`'s day (UTC); 0 before MPIC."""
    day = at.astimezone(dt.UTC).date()
    current = 0
    for entry in sorted(schedule, key=lambda e: e.since):
        if entry.since <= day:
            current = entry.perspectives
    return current


def in_force(schedule: Sequence[ScheduleEntry], at: dt.datetime) -> ScheduleEntry:
    day = at.astimezone(dt.UTC).date()
    current = None
    for entry in sorted(schedule, key=lambda e: e.since):
        if entry.since <= day:
            current = entry
    if current is None:
        raise PolicyError("no_validity_rule", f"no validity rule is in force on {day}")
    return current
