"""Whether a responder host should get traffic, with no I/O: decided by its copier
(ocsp/status/copier.py) from what it observed of its Redis (`Observed`) and of the
copy, and served by every responder process on /readyz. Ready once the copy is
loaded, while Redis answers, holds a whole copy (`seq` present) and its replication
link has not been down longer than `max_lag`.
"""

from __future__ import annotations

import msgspec


class Observed(msgspec.Struct, frozen=True):
    """What the edge last saw of its Redis (a replica, usually)."""

    reachable: bool
    seq: int | None  # Redis's `seq`: None when it has none (empty, or being rebuilt)
    role: str = "master"  # INFO replication's role: "master" or "slave"
    link_up: bool = True  # a replica's master_link_status
    link_down_for: float = 0.0  # seconds the replica's link has been down
    unreachable_for: float = 0.0  # seconds since Redis last answered


class Readiness(msgspec.Struct, frozen=True):
    """The body of /readyz."""

    ready: bool
    reason: str  # "" when ready
    loaded: bool
    redis: str  # "up" or "down"
    role: str  # "primary" or "replica"
    link: str  # "up", "down" (a replica's link to its primary) or "n/a"
    lag_seconds: float  # how long what is served may trail the primary, at most
    seq: int  # the last change applied here
    redis_seq: int | None
    responses: int
    crls: int


def readiness(
    seen: Observed,
    *,
    loaded: bool,
    seq: int,
    max_lag: float,
    responses: int,
    crls: int,
    loading: int | None = None,
) -> Readiness:
    """`loading`: responses read so far by a whole load under way (None: none is)."""
    replica = seen.role == "slave"
    if not seen.reachable:
        lag = seen.unreachable_for
    elif replica and not seen.link_up:
        lag = seen.link_down_for
    else:
        lag = 0.0
    if not loaded:
        reason = "the first load from Redis has not completed" + (
            f" ({loading} responses so far)" if loading is not None else ""
        )
    elif not seen.reachable and lag > max_lag:
        reason = f"Redis has not answered for {lag:.1f} s"
    elif seen.reachable and seen.seq is None:
        reason = "Redis holds no status (empty or being rebuilt): serving the last copy"
    elif lag > max_lag:
        reason = f"the replica's link to its primary has been down for {lag:.1f} s"
    else:
        reason = ""
    return Readiness(
        ready=not reason,
        reason=reason,
        loaded=loaded,
        redis="up" if seen.reachable else "down",
        role="replica" if replica else "primary",
        link=("up" if seen.link_up else "down") if replica else "n/a",
        lag_seconds=round(lag, 3),
        seq=seq,
        redis_seq=seen.seq,
        responses=responses,
        crls=crls,
    )
