"""When a failed delivery is tried again: quickly at first, then hourly, for a day by
default ([notify] retry_schedule), so a receiver down for a night still gets every
event; then the event is given up and `hanko notify status` says so."""

from __future__ import annotations

from collections.abc import Sequence


def next_attempt(first_attempt: int, attempts: int, schedule: Sequence[int]) -> int | None:
    """When attempt number `attempts + 1` is due (epoch seconds), or None: given up.
    `attempts` is how many were made, the first at `first_attempt`; `schedule` holds
    each retry's delay after the first attempt."""
    if attempts < 1:
        return first_attempt
    if attempts > len(schedule):
        return None
    return first_attempt + schedule[attempts - 1]
