"""Replay nonces (RFC 8555 6.5): each is good once, for a bounded time, and the set of
outstanding ones is bounded in memory.

Two generations: nonces are issued into the current one; a generation rotates out
after half the lifetime or when it holds half the capacity, so a nonce lives between
half and the whole lifetime and at most `capacity` are remembered. A nonce that is
unknown, used or rotated out is refused (badNonce; the client retries with the fresh
nonce that answer carries). Pure: the caller passes the time.
"""

from __future__ import annotations

import secrets

import msgspec


class NonceStatistics(msgspec.Struct, frozen=True):
    outstanding: int
    issued: int
    redeemed: int
    refused: int


class Nonces:
    __slots__ = (
        "_capacity",
        "_current",
        "_issued",
        "_previous",
        "_redeemed",
        "_refused",
        "_since",
        "_span",
    )

    def __init__(self, *, capacity: int = 200_000, lifetime: float = 300.0, now: float) -> None:
        self._capacity = max(2, capacity)
        self._span = lifetime / 2
        self._current: set[str] = set()
        self._previous: set[str] = set()
        self._since = now
        self._issued = self._redeemed = self._refused = 0

    def _rotate(self, now: float) -> None:
        if now - self._since >= self._span or len(self._current) >= self._capacity // 2:
            if now - self._since >= 2 * self._span:
                self._previous = set()  # both generations are past their time
            else:
                self._previous = self._current
            self._current = set()
            self._since = now

    def issue(self, now: float) -> str:
        self._rotate(now)
        nonce = secrets.token_urlsafe(16)
        self._current.add(nonce)
        self._issued += 1
        return nonce

    def redeem(self, nonce: str, now: float) -> bool:
        """True once for a nonce this issued and that has not rotated out."""
        self._rotate(now)
        for generation in (self._current, self._previous):
            if nonce in generation:
                generation.discard(nonce)
                self._redeemed += 1
                return True
        self._refused += 1
        return False

    def statistics(self) -> NonceStatistics:
        return NonceStatistics(
            outstanding=len(self._current) + len(self._previous),
            issued=self._issued,
            redeemed=self._redeemed,
            refused=self._refused,
        )
