"""The token bucket behind a key's rate, with the time passed in."""

from __future__ import annotations

import pytest

from core.access.ratelimit import TokenBucket, retry_after


def test_bucket_arithmetic() -> None:
    bucket = TokenBucket(0.5, now=0.0)  # one request every two seconds, burst of one
    assert bucket.take(0.0) == 0.0
    assert bucket.take(0.5) == pytest.approx(1.5)
    assert bucket.take(2.0) == 0.0
    assert (retry_after(0.01), retry_after(1.0), retry_after(1.2)) == (1, 1, 2)


def test_a_burst_is_one_seconds_worth() -> None:
    bucket = TokenBucket(5.0, now=0.0)
    assert [bucket.take(0.0) for _ in range(5)] == [0.0] * 5
    assert bucket.take(0.0) == pytest.approx(0.2)
    assert bucket.take(10.0) == 0.0  # refilled, never past the burst
    assert sum(bucket.take(10.0) == 0.0 for _ in range(10)) == 4
