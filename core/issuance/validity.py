"""The BR validity schedule (ballot SC-081): the limits in force on a given date.

Pure. The schedule is data in configuration; the default is the BR's.
"""

from __future__ import annotations

import datetime as dt

import msgspec

from core.errors import PolicyError


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
ORG_REUSE_DAYS = 398
SECOND = dt.timedelta(seconds=1)


def in_force(schedule: tuple[ScheduleEntry, ...], at: dt.datetime) -> ScheduleEntry:
    day = at.astimezone(dt.UTC).date()
    current = None
    for entry in sorted(schedule, key=lambda e: e.since):
        if entry.since <= day:
            current = entry
    if current is None:
        raise PolicyError("no_validity_rule", f"no validity rule is in force on {day}")
    return current


def not_after_for(not_before: dt.datetime, days: int) -> dt.datetime:
    """BR validity counts both ends inclusively: `days` days end one second early."""
    return not_before + dt.timedelta(days=days) - SECOND


def check_days(schedule: tuple[ScheduleEntry, ...], at: dt.datetime, days: int) -> None:
    limit = in_force(schedule, at).max_days
    if days < 1:
        raise PolicyError("validity_invalid", "validity_days must be at least 1")
    if days > limit:
        raise PolicyError(
            "validity_too_long",
            f"{days} days exceeds the {limit}-day maximum in force on {at.date()} (BR SC-081)",
        )
