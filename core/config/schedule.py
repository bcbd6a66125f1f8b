"""The BR validity schedule (ballot SC-081) as configuration data; the default is the BR's.

The rules over it (which entry is in force, the longest validity) are issuance policy:
core/issuance/validity.py.
"""

from __future__ import annotations

import datetime as dt

import msgspec


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
