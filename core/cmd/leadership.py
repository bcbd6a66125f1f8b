"""Leadership: the work only one hanko process of a store may do runs in the process that
holds the store's leader lock (core/store/leader_lock.py), and moves to another when that
one dies or loses its connection to the store.

A follower tries the lock every `poll` seconds. The leader runs the leader's tasks in a
nursery of their own and checks the lock every `check` seconds; when the check fails
(or does not answer within `check` seconds) it cancels those tasks and goes back to
following. A leader's task that fails on the store (the database went away) stops
them all the same way, instead of the process. The lock's calls block, so they run in
worker threads.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

import msgspec
import trio

from core.base.errors import StoreError
from core.store.leader_lock import LeaderLock

log = logging.getLogger("hanko")

StartTasks = Callable[[trio.Nursery], Awaitable[None]]


def _first(group: BaseExceptionGroup[StoreError]) -> StoreError:
    error: BaseException = group
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    assert isinstance(error, StoreError)  # noqa: S101 - split by except*
    return error


class LeaderStatistics(msgspec.Struct, frozen=True):
    leader: bool
    terms: int  # how many times this process became the leader
    leader_since: float | None  # epoch seconds
    lock: str


class Leadership:
    def __init__(self, lock: LeaderLock, *, poll: float = 1.0, check: float = 1.0) -> None:
        self._lock = lock
        self._poll = poll
        self._check = check
        self._leader = False
        self._terms = 0
        self._since: float | None = None

    async def run(
        self, start: StartTasks, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Lead whenever the lock is ours; `start(nursery)` starts the leader's tasks.
        Started (task_status) after the first try, and the tasks' start when it won."""
        started = False
        try:
            while True:
                if await trio.to_thread.run_sync(self._lock.try_acquire, abandon_on_cancel=True):
                    await self._lead(start, task_status if not started else None)
                    started = True
                    continue
                if not started:
                    task_status.started()
                    started = True
                await trio.sleep(self._poll)
        finally:
            self._leader = False
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(self._lock.release)

    async def _lead(self, start: StartTasks, task_status: trio.TaskStatus[None] | None) -> None:
        self._leader, self._since = True, time.time()
        self._terms += 1
        log.info("leading: %s is ours", self._lock.describe(), extra={"event": "leader.elected"})
        why = f"{self._lock.describe()} was lost"
        try:
            async with trio.open_nursery() as nursery:
                await start(nursery)
                if task_status is not None:
                    task_status.started()
                nursery.start_soon(self._watch, nursery.cancel_scope)
        except* StoreError as group:
            # The store failed under a leader's task (a database that went away): the
            # tasks stop and the lock goes, for whichever process reaches the store next.
            why = f"the store failed under the leader's tasks ({_first(group).message})"
        finally:
            self._leader, self._since = False, None
        log.warning("no longer leading: %s; its tasks stopped", why, extra={"event": "leader.lost"})
        await trio.to_thread.run_sync(self._lock.release)
        await trio.sleep(self._poll)

    async def _watch(self, scope: trio.CancelScope) -> None:
        while True:
            await trio.sleep(self._check)
            held = False
            with trio.move_on_after(self._check):
                held = await trio.to_thread.run_sync(self._lock.holds, abandon_on_cancel=True)
            if not held:
                scope.cancel()
                return

    @property
    def leader(self) -> bool:
        return self._leader

    def statistics(self) -> LeaderStatistics:
        return LeaderStatistics(
            leader=self._leader,
            terms=self._terms,
            leader_since=self._since,
            lock=self._lock.describe(),
        )
