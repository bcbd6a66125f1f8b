"""Group commit: the one writer every server-side state change goes through.

Callers `await writer.submit(op)`; the writer runs in its own nursery task, takes every
op queued while the previous commit was on disk (up to `max_group`), runs them in one
LMDB write transaction and commits once. An fsync costs the same for one record or a
thousand, so throughput grows with concurrency while every caller is still answered only
after its data is durable.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import msgspec
import trio

from core.base.errors import StoreError, StoreFull
from core.store.backend import Store
from core.store.transactions import Done, Failed, WriteTxn

T = TypeVar("T")
log = logging.getLogger("hanko.store")


class _Pending(Generic[T]):
    __slots__ = ("done", "op", "result")

    def __init__(self, op: Callable[[WriteTxn], T]) -> None:
        self.op = op
        self.done = trio.Event()
        self.result: Done[T] | Failed | None = None

    def finish(self, result: Done[T] | Failed) -> None:
        self.result = result
        self.done.set()


class WriterStatistics(msgspec.Struct, frozen=True):
    queued: int
    commits: int
    ops: int
    failed_ops: int
    largest_group: int
    mean_group: float
    full: bool  # the map is at max_map_size: writes are refused


class GroupCommitWriter:
    def __init__(self, store: Store, *, max_group: int = 2048, linger: float = 0.0) -> None:
        if max_group < 1:
            raise ValueError("max_group must be at least 1")
        self._store = store
        self._max_group = max_group
        self._linger = linger
        # Unbounded on purpose: callers already wait for their own commit, so the queue
        # can never outgrow the number of callers in flight.
        self._send, self._receive = trio.open_memory_channel[_Pending[Any]](float("inf"))
        self._commits = 0
        # Each durable commit's (ops, seconds), for metrics.
        self.on_commit: Callable[[int, float], None] | None = None
        self._ops = 0
        self._failed = 0
        self._largest = 0
        self._running = False
        self._full = False

    async def submit(self, op: Callable[[WriteTxn], T]) -> T:
        """Run `op` inside a durable commit and return its result (or raise its error)."""
        if not self._running:
            raise StoreError("the store writer is not running")
        pending: _Pending[T] = _Pending(op)
        self._send.send_nowait(pending)
        await pending.done.wait()
        result = pending.result
        if isinstance(result, Done):
            return result.value
        raise result.error if result is not None else StoreError("write never finished")

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The writer loop; start it with `nursery.start(writer.run)`."""
        self._running = True
        task_status.started()
        try:
            while True:
                group = [await self._receive.receive()]
                if self._linger:
                    await trio.sleep(self._linger)
                while len(group) < self._max_group:
                    try:
                        group.append(self._receive.receive_nowait())
                    except trio.WouldBlock:
                        break
                await self._commit(group)
        finally:
            self._running = False
            # Whatever is still queued was never committed: tell its callers so.
            while True:
                try:
                    pending = self._receive.receive_nowait()
                except trio.WouldBlock:
                    break
                pending.finish(Failed(StoreError("the store writer stopped before this write")))

    async def _commit(self, group: list[_Pending[Any]]) -> None:
        ops = [p.op for p in group]
        started = time.monotonic()
        try:
            # LMDB write transactions belong to one thread; the whole group runs in one
            # worker-thread call, so the trio loop keeps accepting work meanwhile.
            results = await trio.to_thread.run_sync(self._store.commit_group, ops)
        except Exception as exc:
            err = exc if isinstance(exc, StoreError) else StoreError(f"commit failed: {exc}")
            if isinstance(err, StoreFull):
                if not self._full:  # one line when it starts, not one per refused write
                    log.error("%s", err.message)  # noqa: TRY400 - a state, not a bug: no traceback
                self._full = True
            for p in group:
                p.finish(Failed(err))
            self._failed += len(group)
            return
        self._commits += 1
        self._ops += len(group)
        self._largest = max(self._largest, len(group))
        if self.on_commit is not None:
            self.on_commit(len(group), time.monotonic() - started)
        for p, result in zip(group, results, strict=True):
            if isinstance(result, Failed):
                self._failed += 1
            p.finish(result)

    def statistics(self) -> WriterStatistics:
        return WriterStatistics(
            queued=self._receive.statistics().current_buffer_used,
            commits=self._commits,
            ops=self._ops,
            failed_ops=self._failed,
            largest_group=self._largest,
            mean_group=(self._ops / self._commits) if self._commits else 0.0,
            full=self._full,
        )
