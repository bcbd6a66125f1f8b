"""A token bucket per key: `rate` requests a second on average, bursts of up to one
second's worth. Pure: the caller passes the time."""

from __future__ import annotations

import math


class TokenBucket:
    __slots__ = ("_at", "_burst", "_rate", "_tokens")

    def __init__(self, rate: float, now: float) -> None:
        self._rate = rate
        self._burst = max(1.0, rate)
        self._tokens = self._burst
        self._at = now

    @property
    def rate(self) -> float:
        return self._rate

    def take(self, now: float) -> float:
        """0.0 if a request may go now (and counts it); else the seconds until one may."""
        self._tokens = min(self._burst, self._tokens + (now - self._at) * self._rate)
        self._at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self._rate


class Buckets:
    """A token bucket per caller (an API key, an ACME account), made on its first
    request. As many as there are callers: each is a key or an account on record."""

    __slots__ = ("_by_caller",)

    def __init__(self) -> None:
        self._by_caller: dict[str, TokenBucket] = {}

    def take(self, caller: str, rate: float, now: float) -> float:
        """TokenBucket.take for `caller`, at `rate` requests a second."""
        bucket = self._by_caller.get(caller)
        if bucket is None:
            bucket = self._by_caller[caller] = TokenBucket(rate, now)
        return bucket.take(now)


def retry_after(seconds: float) -> int:
    """Retry-After is whole seconds: round up, at least 1."""
    return max(1, math.ceil(seconds))
