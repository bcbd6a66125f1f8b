"""The BR validity schedule (ballot SC-081): the limits in force on a given date.

Pure. The schedule is data in configuration (core/config/schedule.py).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from core.base.errors import PolicyError
from core.config.schedule import ScheduleEntry, in_force

ORG_REUSE_DAYS = 398
SECOND = dt.timedelta(seconds=1)


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
