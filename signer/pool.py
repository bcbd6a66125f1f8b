"""The batched signer: a trio front end over a pool of PKCS#11 worker processes.

Callers `await pool.sign(label, alg, data)` (or `sign_many` for a bulk job). Requests
wait in three priority queues (interactive issuance, then OCSP refresh, then bulk) whose
total is bounded: a full queue makes callers wait, or raises SignerOverloaded for callers
that asked not to wait. For each worker process, `pipeline` feeder tasks take batches
(up to `batch_max`, highest priority first) and send them over the worker's pipe, so the
worker always has the next batch queued in its pipe while it signs the current one.
Batches form by themselves under load; an idle worker gets a request at once, and a busy
one lets the queue fill for up to `batch_delay` before its next batch.

A worker that dies (or hangs past `batch_timeout`) is killed and replaced; the requests
of its in-flight batches are retried once on the next batch any worker takes, and fail
with a clear SignerError if that fails too.
"""

from __future__ import annotations

import itertools
import os
from collections import deque
from collections.abc import Callable, Sequence

import msgspec
import trio

from core.base import children
from core.base.errors import HsmUnavailable, SignerClosed, SignerError, SignerOverloaded
from signer.algorithms import PREHASHED, SignAlgorithm
from signer.api import Priority
from signer.messages import BatchResult
from signer.requests import Batch, Request, SpaceWaiter, Waiter, take
from signer.workers import WorkerDied, WorkerProcess, WorkerSpec, start_worker

__all__ = ["SignerPool", "SignerStatistics", "WorkerSpec", "WorkerStatistics"]


class WorkerStatistics(msgspec.Struct, frozen=True):
    slot: int
    pid: int | None
    alive: bool
    batches: int
    signatures: int
    restarts: int
    in_flight_batches: int


class SignerStatistics(msgspec.Struct, frozen=True):
    queued: int
    queued_by_priority: dict[str, int]
    queue_max: int
    waiting_for_room: int  # callers waiting for the queue to have room for their requests
    batches: int
    signatures: int
    mean_batch: float
    largest_batch: int
    retried: int
    errors: int
    restarts: int
    workers: list[WorkerStatistics]


class SignerPool:
    def __init__(
        self,
        spec: WorkerSpec,
        *,
        workers: int = 0,
        batch_max: int = 64,
        bulk_batch_max: int = 0,
        batch_delay: float = 0.0005,
        queue_max: int = 8192,
        batch_timeout: float = 30.0,
        pipeline: int = 2,
    ) -> None:
        bulk_batch_max = bulk_batch_max or batch_max
        if not 1 <= batch_max <= bulk_batch_max <= queue_max or pipeline < 1:
            raise ValueError("need 1 <= batch_max <= bulk_batch_max <= queue_max and pipeline >= 1")
        self._spec = spec
        self._nworkers = workers or os.cpu_count() or 1
        self._batch_max = batch_max
        # A batch with no interactive request in it may grow to this: each batch costs
        # the core a fixed ~0.2 ms of trio scheduling and pipe traffic, so a refresh in
        # batches of 64 paid 6 us of core CPU per signature and in batches of 256, 3.
        # Interactive requests keep batch_max, so they wait behind at most the
        # `pipeline` large batches already sent to a worker (docs/architecture.md,
        # "Bulk batches").
        self._bulk_batch_max = bulk_batch_max
        self._batch_delay = batch_delay
        self._queue_max = queue_max
        self._batch_timeout = batch_timeout
        self._pipeline = pipeline
        self._queues: tuple[deque[Request], ...] = tuple(deque() for _ in Priority)
        self._queued = 0
        self._work = trio.lowlevel.ParkingLot()
        # Callers waiting for room, first come first served. Each batch taken wakes
        # only those whose requests now fit (a wake-all made every waiting refresher
        # slot re-check and re-park on every batch: a quarter of the pool's CPU).
        self._space_waiters: deque[SpaceWaiter] = deque()
        self._reserved = 0  # room promised to woken waiters that have not enqueued yet
        self._batch_ids = itertools.count(1)
        self._running = False
        self._closed = False
        self._workers: dict[int, WorkerProcess | None] = {}
        self._key_types: dict[str, str] = {}
        # statistics; each answered batch's size, for metrics
        self.on_batch: Callable[[int], None] | None = None
        self._batches = 0
        self._signatures = 0
        self._largest = 0
        self._retried = 0
        self._errors = 0
        self._restarts = 0
        self._per_slot: dict[int, list[int]] = {}  # slot -> [batches, signatures, restarts]

    # -- public API ---------------------------------------------------------------------

    @property
    def key_types(self) -> dict[str, str]:
        """Key label -> key type, as the workers found them at start-up."""
        return dict(self._key_types)

    async def sign(
        self,
        label: str,
        alg: SignAlgorithm,
        data: bytes,
        *,
        priority: Priority = Priority.INTERACTIVE,
        wait: bool = True,
    ) -> bytes:
        """Sign `data` (the whole message) and return the signature in X.509 form."""
        req = Request(label, alg.value, [data], 0, 1, priority, None)
        if (
            self._running
            and self._queued + self._reserved < self._queue_max
            and not self._space_waiters
        ):
            # Fast path (the common case): room in the queue and nobody waiting for it.
            self._queues[priority].append(req)
            self._queued += 1
            if self._work:
                self._work.unpark()
        else:
            await self._enqueue([req], 1, wait=wait)
        req.task = trio.lowlevel.current_task()

        def abort(_: object) -> trio.lowlevel.Abort:
            # Cancelled while waiting: the request stays queued and is skipped (or its
            # signature dropped); either way nothing is reported to a caller that left.
            req.task = None
            return trio.lowlevel.Abort.SUCCEEDED

        value: bytes = await trio.lowlevel.wait_task_rescheduled(abort)
        return value

    async def sign_many(
        self,
        items: Sequence[tuple[str, SignAlgorithm, bytes]],
        *,
        priority: Priority = Priority.BULK,
        wait: bool = True,
    ) -> list[bytes | SignerError]:
        """Sign many messages; each slot holds its signature or its own error."""
        n = len(items)
        if not n:
            return []
        waiter = Waiter(n)
        messages = [data for _, _, data in items]
        # One request per run of the same key and algorithm, cut where the queue bound
        # would fall. `alg` goes as it is: an IntEnum is an int to msgspec.
        step = self._queue_max
        for start in range(0, n, step):
            end = min(start + step, n)
            reqs = []
            lo = start
            label, alg, _ = items[lo]
            for i in range(lo + 1, end):
                item = items[i]
                if item[0] != label or item[1] != alg:
                    reqs.append(Request(label, alg, messages, lo, i, priority, waiter))
                    lo = i
                    label, alg, _ = item
            reqs.append(Request(label, alg, messages, lo, end, priority, waiter))
            await self._enqueue(reqs, end - start, wait=wait)
        await waiter.event.wait()
        return waiter.out

    async def sign_digest(
        self,
        label: str,
        alg: SignAlgorithm,
        digest: bytes,
        *,
        priority: Priority = Priority.BULK,
    ) -> bytes:
        """Sign a digest already computed with `alg`'s hash (a document too large to
        send whole: a CRL). Returns the signature in X.509 form."""
        waiter = Waiter(1)
        req = Request(label, alg.value | PREHASHED, [digest], 0, 1, priority, waiter)
        await self._enqueue([req], 1, wait=True)
        await waiter.event.wait()
        result = waiter.out[0]
        if isinstance(result, SignerError):
            raise result
        return result

    def statistics(self) -> SignerStatistics:
        workers = []
        for slot in range(self._nworkers):
            w = self._workers.get(slot)
            counts = self._per_slot.get(slot, [0, 0, 0])
            workers.append(
                WorkerStatistics(
                    slot=slot,
                    pid=w.pid if w else None,
                    alive=bool(w and w.proc.returncode is None),
                    batches=counts[0],
                    signatures=counts[1],
                    restarts=counts[2],
                    in_flight_batches=len(w.inflight) if w else 0,
                )
            )
        return SignerStatistics(
            queued=self._queued,
            queued_by_priority={
                p.name.lower(): sum(r.count for r in self._queues[p]) for p in Priority
            },
            queue_max=self._queue_max,
            waiting_for_room=len(self._space_waiters),
            batches=self._batches,
            signatures=self._signatures,
            mean_batch=(self._signatures / self._batches) if self._batches else 0.0,
            largest_batch=self._largest,
            retried=self._retried,
            errors=self._errors,
            restarts=self._restarts,
            workers=workers,
        )

    # -- queueing -----------------------------------------------------------------------

    async def _enqueue(self, reqs: list[Request], need: int, *, wait: bool) -> None:
        """Queue `reqs`, `need` messages in all (at most queue_max)."""
        if self._closed or not self._running:
            raise SignerClosed("the signer is not running")
        # Callers already waiting for space are ahead in line: nobody overtakes them,
        # and a caller that will not wait is refused while they wait.
        if self._queued + self._reserved + need > self._queue_max or self._space_waiters:
            if not wait:
                raise SignerOverloaded(
                    f"signer queue is full ({self._queued} of {self._queue_max} waiting)"
                )
            waiter = SpaceWaiter(need)
            self._space_waiters.append(waiter)
            try:
                await waiter.event.wait()
            except BaseException:
                if waiter.event.is_set():  # woken, then cancelled: pass the room on
                    self._reserved -= need
                    self._wake_space()
                else:
                    self._space_waiters.remove(waiter)
                raise
            self._reserved -= need
            if self._closed:
                raise SignerClosed("the signer stopped")
        queues = self._queues
        for r in reqs:
            queues[r.priority].append(r)
        self._queued += need
        if self._work:
            self._work.unpark(count=-(-need // self._batch_max))

    def _wake_space(self) -> None:
        """Wake the waiters at the head of the line whose requests fit now."""
        waiters = self._space_waiters
        free = self._queue_max - self._queued - self._reserved
        while waiters and (waiters[0].need <= free or self._closed):
            w = waiters.popleft()
            free -= w.need
            self._reserved += w.need
            w.event.set()

    def _requeue(self, reqs: list[Request], reason: str) -> None:
        """Put the requests of a lost batch back at the front, or fail the twice-lost."""
        for r in reversed(reqs):
            if r.abandoned:
                continue
            r.attempts += 1
            if r.attempts > 1 or self._closed:
                self._errors += r.count
                r.fail(SignerError(f"signing failed twice: {reason}"))
                continue
            self._retried += r.count
            self._queues[r.priority].appendleft(r)
            self._queued += r.count
        self._work.unpark_all()

    async def _take_batch(self, worker: WorkerProcess) -> Batch:
        while True:
            while self._queued == 0:
                await self._work.park()
            if worker.inflight and self._queued < self._batch_max and self._batch_delay:
                # The worker is busy anyway: let a fuller batch form meanwhile.
                await trio.sleep(self._batch_delay)
                if self._queued == 0:
                    continue
            else:
                await trio.lowlevel.checkpoint()
                if self._queued == 0:
                    continue
            # No checkpoint from here to the caller putting the batch in flight, so a
            # cancellation can never drop requests between the queue and the worker.
            # Fair share: never take more than this worker's part of the queue, so a
            # burst of 16 requests keeps two workers busy instead of one.
            cap = self._batch_max if self._queues[Priority.INTERACTIVE] else self._bulk_batch_max
            limit = min(cap, -(-self._queued // self._nworkers))
            taken, removed = take(self._queues, limit)
            self._queued -= removed
            if self._space_waiters:
                self._wake_space()
            if not taken:
                continue
            return Batch(next(self._batch_ids), taken)

    # -- workers ------------------------------------------------------------------------

    async def _spawn(self, slot: int) -> WorkerProcess:
        worker, self._key_types = await start_worker(self._spec, slot)
        return worker

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Start the workers (failing fast on a bad PIN or key), then supervise them."""
        if self._running:
            raise SignerError("the signer is already running")
        first: dict[int, WorkerProcess] = {}
        try:
            for slot in range(self._nworkers):
                first[slot] = await self._spawn(slot)
                self._workers[slot] = first[slot]
                self._per_slot[slot] = [0, 0, 0]
        except BaseException:
            for w in first.values():
                await w.stop()
            raise
        self._running = True
        try:
            async with trio.open_nursery() as nursery:
                for slot, worker in first.items():
                    nursery.start_soon(self._supervise, slot, worker)
                task_status.started()
        finally:
            self._closed = True
            self._running = False
            self._fail_queued(SignerClosed("the signer stopped before this request was signed"))

    async def _supervise(self, slot: int, worker: WorkerProcess) -> None:
        backoff = children.Backoff()
        while True:
            reason = "worker stopped"
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._read_results, worker)
                    for _ in range(self._pipeline):
                        nursery.start_soon(self._feed, worker)
            except* WorkerDied as group:
                reason = str(group.exceptions[0])
            finally:
                lost = [r for b in worker.inflight.values() for r in b.requests]
                for b in worker.inflight.values():
                    b.done.set()
                worker.inflight.clear()
                with trio.CancelScope(shield=True):
                    if worker.proc.returncode is None:
                        worker.proc.kill()  # it failed: no grace
                    await worker.proc.wait()
                self._workers[slot] = None
                self._requeue(lost, reason)
            # Replace the worker; if the HSM refuses for now, back off and try again
            # while the other workers carry the load.
            while True:
                try:
                    worker = await self._spawn(slot)
                    break
                except HsmUnavailable:
                    if all(w is None for w in self._workers.values()):
                        self._fail_queued(SignerError(f"no signer worker available: {reason}"))
                    await trio.sleep(backoff.next())
            backoff.reset()
            self._workers[slot] = worker
            self._restarts += 1
            self._per_slot[slot][2] += 1

    def _fail_queued(self, error: SignerError) -> None:
        for q in self._queues:
            while q:
                r = q.popleft()
                self._errors += r.count
                r.fail(error)
        self._queued = 0
        self._wake_space()

    async def _feed(self, worker: WorkerProcess) -> None:
        while True:
            batch = await self._take_batch(worker)
            worker.inflight[batch.id] = batch
            await worker.send(batch)
            with trio.move_on_after(self._batch_timeout):
                await batch.done.wait()
            if not batch.done.is_set():
                raise WorkerDied(
                    f"worker {worker.pid} did not answer within {self._batch_timeout:g}s"
                )

    async def _read_results(self, worker: WorkerProcess) -> None:
        counts = self._per_slot[worker.slot]
        while True:
            msg = await worker.receive()
            if not isinstance(msg, BatchResult):
                raise WorkerDied(f"worker {worker.pid} sent an unexpected message")
            batch = worker.inflight.get(msg.batch_id)
            if batch is None:
                continue
            signatures, errors = msg.signatures, msg.errors
            n = sum(r.count for r in batch.requests)
            if len(signatures) != n:  # still in flight: retried with the worker's others
                raise WorkerDied(
                    f"worker {worker.pid} answered {len(signatures)} signatures for {n} messages"
                )
            del worker.inflight[msg.batch_id]
            pos = 0
            for req in batch.requests:
                self._errors += req.settle(signatures, pos, errors)
                pos += req.count
            self._batches += 1
            self._signatures += n
            self._largest = max(self._largest, n)
            if self.on_batch is not None:
                self.on_batch(n)
            counts[0] += 1
            counts[1] += n
            batch.done.set()
