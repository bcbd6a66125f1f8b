"""Durations and sizes with explicit units, as they appear in configuration files.

A bare number is refused: "5" could mean seconds or milliseconds, and a CA that
guesses wrong publishes a stale CRL.
"""

from __future__ import annotations

import re

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(us|ms|s|m|h|d)\s*$")
_DURATION_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}

_SIZE_RE = re.compile(r"^\s*(\d+)\s*(B|KiB|MiB|GiB|TiB)\s*$")
_SIZE_UNITS = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}


class Duration:
    """A length of time written with a unit: "250ms", "8h", "10d"."""

    __slots__ = ("seconds", "text")

    def __init__(self, text: str) -> None:
        m = _DURATION_RE.match(text)
        if m is None:
            raise ValueError(
                f"invalid duration {text!r}: write a number and a unit (us, ms, s, m, h, d),"
                " e.g. '500ms' or '8h'"
            )
        self.text = text.strip()
        self.seconds = float(m.group(1)) * _DURATION_UNITS[m.group(2)]

    def __repr__(self) -> str:
        return f"Duration({self.text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Duration) and other.seconds == self.seconds

    def __hash__(self) -> int:
        return hash(self.seconds)


class ByteSize:
    """A size written with a binary unit: "64KiB", "4GiB"."""

    __slots__ = ("bytes", "text")

    def __init__(self, text: str) -> None:
        m = _SIZE_RE.match(text)
        if m is None:
            raise ValueError(
                f"invalid size {text!r}: write a whole number and a unit (B, KiB, MiB, GiB,"
                " TiB), e.g. '4GiB'"
            )
        self.text = text.strip()
        self.bytes = int(m.group(1)) * _SIZE_UNITS[m.group(2)]

    def __repr__(self) -> str:
        return f"ByteSize({self.text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ByteSize) and other.bytes == self.bytes

    def __hash__(self) -> int:
        return hash(self.bytes)


def format_bytes(n: int) -> str:
    """`n` in the largest binary unit that divides it: 8589934592 -> "8GiB"."""
    for unit in ("TiB", "GiB", "MiB", "KiB"):
        size = _SIZE_UNITS[unit]
        if n >= size and n % size == 0:
            return f"{n // size}{unit}"
    return f"{n}B"
