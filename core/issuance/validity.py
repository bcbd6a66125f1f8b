"""The BR validity schedule (ballot SC-081): the limits in force on a given date.

Pure. The schedule is data in configuration (core/config/schedule.py).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from core.base.errors import PolicyError
from core.config.schedule import ScheduleEntry

ORG_REUSE_DAYS = 398
SECOND = dt.timedelta(seconds=1)


def in_force(schedule: Sequence[ScheduleEntry], at: dt.datetime) -> ScheduleEntry:
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


def check_days(schedule: Sequence[ScheduleEntry], at: dt.datetime, days: int) -> None:
    limit = in_force(schedule, at).max_days
    if days < 1:
        raise PolicyError("validity_invalid", "validity_days must be at least 1")
    if days > limit:
        raise PolicyError(
            "validity_too_long",
            f"{days} days exceeds the {limit}-day maximum in force on {at.date()} (BR SC-081)",
        )
