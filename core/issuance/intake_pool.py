"""A pool of processes for CSR intake, so both cores work on issuance.

The proof-of-possession check and the key checks are most of the per-certificate work
in the core process; for large request batches they are spread over these processes
(plain Python, no PKCS#11), and the trio thread only waits. Small requests are checked
inline: a round trip to another process costs more than it saves there.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

import msgspec
import trio

from core.base import children
from core.base.errors import PolicyError
from core.issuance.intake import CheckedCsr, Item, check_each, check_portable

INLINE_BELOW = 16  # requests; fewer than this are checked in the calling process


class IntakeStatistics(msgspec.Struct, frozen=True):
    processes: int
    started: bool  # the processes start with the first large batch
    requests: int  # CSRs checked
    inline: int  # of which in the calling process (small requests)
    batches: int  # large batches spread over the processes


class IntakePool:
    def __init__(self, processes: int = 0) -> None:
        self._processes = processes or os.cpu_count() or 1
        self._executor: ProcessPoolExecutor | None = None
        self._batches = 0
        self._requests = 0
        self._inline = 0

    def _pool(self) -> ProcessPoolExecutor:
        # Made on first use: a service that never sees a large batch starts no processes.
        # spawn, not fork: forking a process that runs trio and threads is unsafe.
        if self._executor is None:
            self._executor = ProcessPoolExecutor(
                max_workers=self._processes,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=children.exit_with_parent,
                initargs=(os.getpid(),),
            )
        return self._executor

    def statistics(self) -> IntakeStatistics:
        return IntakeStatistics(
            processes=self._processes,
            started=self._executor is not None,
            requests=self._requests,
            inline=self._inline,
            batches=self._batches,
        )

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    async def check(self, items: list[Item]) -> list[CheckedCsr | PolicyError]:
        self._requests += len(items)
        if len(items) < INLINE_BELOW:
            self._inline += len(items)
            return check_each(items)
        size = -(-len(items) // self._processes)
        futures = [
            self._pool().submit(check_portable, items[i : i + size])
            for i in range(0, len(items), size)
        ]
        self._batches += 1
        out: list[CheckedCsr | PolicyError] = []
        for future in futures:
            for result in await trio.to_thread.run_sync(future.result):
                out.append(PolicyError(*result) if isinstance(result, tuple) else result)
        return out
