"""When a failed delivery is tried again: quickly at first, then hourly, for a day
(a receiver down for a night still gets every event); then the event is given up and
says so in `hanko notify status`."""

from __future__ import annotations

# Seconds after the first attempt at which each retry is due.
SCHEDULE: tuple[int, ...] = (30, 90, 300, 900, 1800, 3600, *range(7200, 86400 + 1, 3600))
GIVE_UP_AFTER = 86400


def next_attempt(first_attempt: int, attempts: int) -> int | None:
    """When attempt number `attempts + 1` is due (epoch seconds), or None: given up.
    `attempts` is how many were made, the first at `first_attempt`."""
    if attempts < 1:
        return first_attempt
    if attempts > len(SCHEDULE):
        return None
    return first_attempt + SCHEDULE[attempts - 1]
