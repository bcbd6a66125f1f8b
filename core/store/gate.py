"""The resize gate: many transactions at once, or one map resize alone.

LMDB's mdb_env_set_mapsize may only run while no transaction of this process is open
(the map may move). Transactions pass the gate while no resize waits; a resize waits,
for a bounded time, until the last open transaction has closed, and holds new ones
back while it runs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class ResizeGate:
    __slots__ = ("_active", "_cond", "_resizing")

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._active = 0
        self._resizing = False

    def enter(self) -> None:
        with self._cond:
            while self._resizing:
                self._cond.wait()
            self._active += 1

    def leave(self) -> None:
        with self._cond:
            self._active -= 1
            if self._active == 0:
                self._cond.notify_all()

    def exclusive(self, action: Callable[[], None], *, timeout: float) -> bool:
        """Run `action` with no transaction open; False if one stayed open past
        `timeout` seconds (the action did not run)."""
        with self._cond:
            while self._resizing:
                self._cond.wait()
            self._resizing = True
            try:
                if not self._cond.wait_for(lambda: self._active == 0, timeout=timeout):
                    return False
                action()
                return True
            finally:
                self._resizing = False
                self._cond.notify_all()

    @property
    def active(self) -> int:
        return self._active
