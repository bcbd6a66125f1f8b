"""Injected clocks: nothing in hanko calls datetime.now() on its own."""

from __future__ import annotations

import abc
import datetime as dt

UTC = dt.UTC
US_PER_SECOND = 1_000_000


class Clock(abc.ABC):
    @abc.abstractmethod
    def now(self) -> dt.datetime:
        """The current time, timezone-aware UTC."""

    def now_us(self) -> int:
        """The current time in microseconds since the epoch, at whole seconds: what the
        audit log records (records made in one second share it, as the store's times do)."""
        return to_epoch(self.now()) * US_PER_SECOND


class SystemClock(Clock):
    def now(self) -> dt.datetime:
        return dt.datetime.now(UTC)


class FixedClock(Clock):
    """A clock for tests: stands still until told to move."""

    def __init__(self, at: dt.datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FixedClock needs a timezone-aware datetime")
        self._at = at.astimezone(UTC)

    def now(self) -> dt.datetime:
        return self._at

    def advance(self, delta: dt.timedelta) -> None:
        self._at += delta

    def set(self, at: dt.datetime) -> None:
        self._at = at.astimezone(UTC)


def to_epoch(at: dt.datetime) -> int:
    """Whole seconds since the epoch; the store keeps times in this form."""
    return int(at.timestamp())


def from_epoch(seconds: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, UTC)


def epoch_us(seconds: int) -> int:
    """Epoch seconds as the audit log's microseconds."""
    return seconds * US_PER_SECOND
