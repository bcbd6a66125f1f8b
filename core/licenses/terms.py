"""Calendar arithmetic of license terms. Pure.

Contracts are written in the customer's calendar (Japan: UTC+9), so "ends 2015-05-31"
means the end of that day there. Every function takes and returns epoch seconds and the
zone's offset; nothing here reads a clock.
"""

from __future__ import annotations

import calendar
import datetime as dt

DAY = 86400


def _local(at: int, offset: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(at, dt.timezone(dt.timedelta(minutes=offset)))


def _epoch(local: dt.datetime) -> int:
    return int(local.timestamp())


def add_years(at: int, years: int, offset: int) -> int:
    """The same local date and time `years` later; 29 February becomes 28 February."""
    t = _local(at, offset)
    try:
        return _epoch(t.replace(year=t.year + years))
    except ValueError:
        return _epoch(t.replace(year=t.year + years, day=28))


def add_months(at: int, months: int, offset: int) -> int:
    """The same local day `months` later, or that month's last day if it is shorter."""
    t = _local(at, offset)
    index = t.month - 1 + months
    year, month = t.year + index // 12, index % 12 + 1
    day = min(t.day, calendar.monthrange(year, month)[1])
    return _epoch(t.replace(year=year, month=month, day=day))


def end_of_month_after_year(at: int, offset: int) -> int:
    """A domain-bundle term: from `at` to the last day of the same month one year later,
    inclusive; returns the first instant after it (local midnight). Delivered
    2014-05-08, the term ends 2015-05-31 and this returns 2015-06-01T00:00 local."""
    t = _local(at, offset)
    year, month = t.year + 1, t.month
    next_year, next_month = (year + 1, 1) if month == 12 else (year, month + 1)
    return _epoch(
        dt.datetime(next_year, next_month, 1, tzinfo=dt.timezone(dt.timedelta(minutes=offset)))
    )


def last_day(end: int, offset: int) -> dt.date:
    """The last calendar day of a term whose first instant past it is `end`."""
    return _local(end - 1, offset).date()


def whole_days(seconds: int) -> int:
    """Whole days in a span, rounded up: a certificate valid 90 days less a second is
    charged 90 certificate-days."""
    return max(0, -(-seconds // DAY))


def remaining_days(not_after: int, now: int) -> int:
    """Whole days a certificate still had when released early, rounded down: only days
    it can no longer use go back to the pool."""
    return max(0, (not_after + 1 - now) // DAY)
