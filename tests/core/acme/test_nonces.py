"""Replay nonces: good once, for a bounded time, in bounded memory."""

from __future__ import annotations

from core.acme.nonces import Nonces


def test_a_nonce_is_good_once() -> None:
    nonces = Nonces(capacity=1000, lifetime=60, now=0.0)
    n = nonces.issue(0.0)
    assert nonces.redeem(n, 1.0)
    assert not nonces.redeem(n, 1.0)
    assert not nonces.redeem("never-issued", 1.0)
    assert nonces.statistics().refused == 2


def test_nonces_live_between_half_and_the_whole_lifetime() -> None:
    nonces = Nonces(capacity=1000, lifetime=60, now=0.0)
    early, late = nonces.issue(1.0), nonces.issue(29.0)
    assert nonces.redeem(early, 45.0)  # rotated into the previous generation: still good
    assert not nonces.redeem(late, 95.0)  # two generations later: gone


def test_memory_is_bounded_by_the_capacity() -> None:
    nonces = Nonces(capacity=1000, lifetime=3600, now=0.0)
    issued = [nonces.issue(1.0) for _ in range(10_000)]
    assert nonces.statistics().outstanding <= 1000
    assert nonces.redeem(issued[-1], 1.0)
    assert not nonces.redeem(issued[0], 1.0)
