"""Progress of a benchmark on stderr, so a run of minutes is never silent: a line per
phase with the time it took, and a bar for a phase whose count is known (redrawn in
place on a terminal, a line every few seconds into a file or a pipe). stdout stays
the report."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

BAR = 30
FILE_EVERY = 5.0  # seconds between progress lines when stderr is not a terminal


class Progress:
    def __init__(self, bench: str, stream: TextIO | None = None) -> None:
        self._bench = bench
        self._out = stream or sys.stderr
        self._tty = self._out.isatty()
        self._started = time.monotonic()

    def say(self, text: str) -> None:
        self._out.write(f"bench {self._bench}: {text}\n")
        self._out.flush()

    @contextmanager
    def phase(self, text: str) -> Iterator[None]:
        """A phase of unknown length: its start, then its end with the time taken."""
        self.say(f"{text}...")
        t0 = time.monotonic()
        yield
        self.say(f"{text}: done in {time.monotonic() - t0:.1f} s")

    def bar(self, text: str, total: int) -> Bar:
        return Bar(self, text, total)


class Bar:
    def __init__(self, progress: Progress, text: str, total: int) -> None:
        self._p = progress
        self._text = text
        self._total = max(total, 1)
        self._done = 0
        self._shown = -1  # the count last drawn
        self._t0 = self._last = time.monotonic()
        self._draw(force=True)

    def advance(self, n: int = 1) -> None:
        self._done = min(self._total, self._done + n)
        self._draw()

    def _draw(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < (0.2 if self._p._tty else FILE_EVERY):
            return
        self._last = now
        self._shown = self._done
        frac = self._done / self._total
        filled = int(frac * BAR)
        elapsed = now - self._t0
        eta = f", {elapsed / frac - elapsed:.0f} s left" if 0 < frac < 1 else ""
        line = (
            f"bench {self._p._bench}: {self._text} [{'#' * filled}{'.' * (BAR - filled)}]"
            f" {self._done:,}/{self._total:,} {frac:.0%}{eta}"
        )
        out = self._p._out
        out.write(("\r" + line) if self._p._tty else (line + "\n"))
        out.flush()

    def close(self) -> None:
        self._done = self._total
        if self._shown != self._done:
            self._draw(force=True)
        if self._p._tty:
            self._p._out.write("\n")
        self._p.say(f"{self._text}: done in {time.monotonic() - self._t0:.1f} s")
