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
import subprocess
import sys
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import msgspec
import outcome
import trio

from core.base.errors import HsmUnavailable, SignerClosed, SignerError, SignerOverloaded
from signer.algorithms import PREHASHED, SignAlgorithm
from signer.api import Priority
from signer.messages import (
    FROM_WORKER,
    BatchResult,
    FrameBuffer,
    SignBatch,
    WorkerFailed,
    WorkerInit,
    WorkerReady,
    frame,
)

START_TIMEOUT = 30.0
RESTART_BACKOFF = (0.1, 0.5, 1.0, 2.0, 5.0)


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker needs to log in. The PIN travels over the worker's private pipe."""

    module: str
    token_label: str
    pin: str = field(repr=False)
    softhsm_conf: str | None
    key_labels: tuple[str, ...]


class _Waiter:
    """Completion of a `sign_many` or `sign_digest` caller's messages, and their results
    in order: a signature, or the SignerError of that message."""

    __slots__ = ("event", "out", "remaining")

    def __init__(self, count: int) -> None:
        self.remaining = count
        self.out: list[bytes | SignerError] = [b""] * count
        self.event = trio.Event()

    def done(self, count: int) -> None:
        self.remaining -= count
        if self.remaining == 0:
            self.event.set()


class _Request(msgspec.Struct, eq=False):
    """Messages `messages[lo:hi]`, all to be signed with one key and algorithm, for one
    caller. A `sign` caller has one message and is woken directly through its task (the
    hot path: no Event, no ParkingLot). A `sign_many` run is one request however long:
    a refresh used to queue two requests per certificate, and their building, queueing
    and settling one by one cost the core about 1 us per signature. A batch that has
    room for part of a run takes that part (`split`); the rest stays at the head of its
    queue.

    A Struct rather than a slotted class: built in a sixth of the time. `eq=False`:
    requests are distinct even when their fields are equal."""

    label: str
    alg: int
    messages: list[bytes]  # shared by a `sign_many` caller's requests
    lo: int
    hi: int
    priority: Priority
    waiter: _Waiter | None  # None: a single `sign` caller, woken through `task`
    task: trio.lowlevel.Task | None = None
    attempts: int = 0

    @property
    def count(self) -> int:
        return self.hi - self.lo

    @property
    def abandoned(self) -> bool:
        """A single caller that was cancelled: nobody is waiting for this any more."""
        return self.waiter is None and self.task is None

    def split(self, count: int) -> _Request:
        """Keep the first `count` messages; return the rest as a request of their own."""
        at = self.lo + count
        rest = _Request(
            self.label, self.alg, self.messages, at, self.hi, self.priority, self.waiter,
            attempts=self.attempts,
        )  # fmt: skip
        self.hi = at
        return rest

    def settle(self, signatures: list[bytes], pos: int, errors: dict[int, str]) -> int:
        """Deliver this request's results, found from `pos` in a batch's `signatures`
        (`errors` by batch index). Returns how many of them failed."""
        n = self.count
        mine = {i - pos: errors[i] for i in range(pos, pos + n) if i in errors} if errors else {}
        waiter = self.waiter
        if waiter is None:
            self._wake(
                outcome.Error(SignerError(mine[0])) if mine else outcome.Value(signatures[pos])
            )
        else:
            out = waiter.out
            out[self.lo : self.hi] = signatures[pos : pos + n]
            for i, reason in mine.items():
                out[self.lo + i] = SignerError(reason)
            waiter.done(n)
        return len(mine)

    def fail(self, error: SignerError) -> None:
        waiter = self.waiter
        if waiter is None:
            self._wake(outcome.Error(error))
            return
        waiter.out[self.lo : self.hi] = [error] * self.count
        waiter.done(self.count)

    def _wake(self, result: outcome.Outcome[bytes]) -> None:
        if self.task is not None:
            trio.lowlevel.reschedule(self.task, result)
            self.task = None


class _SpaceWaiter:
    """A caller waiting for room in the queue for `need` requests."""

    __slots__ = ("event", "need")

    def __init__(self, need: int) -> None:
        self.need = need
        self.event = trio.Event()


class _Batch:
    __slots__ = ("done", "id", "requests")

    def __init__(self, batch_id: int, requests: list[_Request]) -> None:
        self.id = batch_id
        self.requests = requests
        self.done = trio.Event()


class _WorkerDied(Exception):
    pass


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


class _Worker:
    """One worker process and its pipe, as seen from the core."""

    def __init__(self, slot: int, proc: trio.Process, pid: int) -> None:
        self.slot = slot
        self.proc = proc
        self.pid = pid
        self.inflight: dict[int, _Batch] = {}
        self.send_lock = trio.Lock()
        self.frames = FrameBuffer()
        self.pending_frames: deque[bytes] = deque()

    async def send(self, batch: _Batch) -> None:
        data = frame(
            SignBatch(batch.id, [(r.label, r.alg, r.messages[r.lo : r.hi]) for r in batch.requests])
        )
        stdin = self.proc.stdin
        if stdin is None:
            raise _WorkerDied(f"worker {self.pid} has no stdin pipe")
        try:
            async with self.send_lock:
                await stdin.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise _WorkerDied(f"worker {self.pid} pipe closed") from exc

    async def receive(self) -> object:
        """The next message from the worker; _WorkerDied at end of stream."""
        stdout = self.proc.stdout
        if stdout is None:
            raise _WorkerDied(f"worker {self.pid} has no stdout pipe")
        while not self.pending_frames:
            try:
                data = await stdout.receive_some(1 << 16)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                raise _WorkerDied(f"worker {self.pid} pipe closed") from exc
            if not data:
                raise _WorkerDied(f"worker {self.pid} exited")
            self.pending_frames.extend(self.frames.feed(data))
        return FROM_WORKER.decode(self.pending_frames.popleft())

    async def stop(self) -> None:
        """Close stdin so the worker finishes and exits; kill it if it lingers."""
        with trio.CancelScope(shield=True):
            if self.proc.stdin is not None:
                await self.proc.stdin.aclose()
            with trio.move_on_after(2.0):
                await self.proc.wait()
            if self.proc.returncode is None:
                self.proc.kill()
                await self.proc.wait()


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
        self._queues: tuple[deque[_Request], ...] = tuple(deque() for _ in Priority)
        self._queued = 0
        self._work = trio.lowlevel.ParkingLot()
        # Callers waiting for room, first come first served. Each batch taken wakes
        # only those whose requests now fit (a wake-all made every waiting refresher
        # slot re-check and re-park on every batch: a quarter of the pool's CPU).
        self._space_waiters: deque[_SpaceWaiter] = deque()
        self._reserved = 0  # room promised to woken waiters that have not enqueued yet
        self._batch_ids = itertools.count(1)
        self._running = False
        self._closed = False
        self._workers: dict[int, _Worker | None] = {}
        self._key_types: dict[str, str] = {}
        # statistics
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
        req = _Request(label, alg.value, [data], 0, 1, priority, None)
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
        waiter = _Waiter(n)
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
                    reqs.append(_Request(label, alg, messages, lo, i, priority, waiter))
                    lo = i
                    label, alg, _ = item
            reqs.append(_Request(label, alg, messages, lo, end, priority, waiter))
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
        waiter = _Waiter(1)
        req = _Request(label, alg.value | PREHASHED, [digest], 0, 1, priority, waiter)
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

    async def _enqueue(self, reqs: list[_Request], need: int, *, wait: bool) -> None:
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
            waiter = _SpaceWaiter(need)
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

    def _requeue(self, reqs: list[_Request], reason: str) -> None:
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

    async def _take_batch(self, worker: _Worker) -> _Batch:
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
            taken: list[_Request] = []
            n = removed = 0
            for q in self._queues:
                while q and n < limit:
                    r = q.popleft()
                    k = r.count
                    if r.abandoned:
                        removed += k
                        continue
                    if k > limit - n:  # take what fits; the rest stays first in line
                        q.appendleft(r.split(limit - n))
                        k = limit - n
                    removed += k
                    n += k
                    taken.append(r)
                if n == limit:
                    break
            self._queued -= removed
            if self._space_waiters:
                self._wake_space()
            if not taken:
                continue
            return _Batch(next(self._batch_ids), taken)

    # -- workers ------------------------------------------------------------------------

    async def _spawn(self, slot: int) -> _Worker:
        proc = await trio.lowlevel.open_process(
            [sys.executable, "-m", "signer.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        worker = _Worker(slot, proc, proc.pid)
        init = WorkerInit(
            self._spec.module,
            self._spec.token_label,
            self._spec.pin,
            self._spec.softhsm_conf,
            list(self._spec.key_labels),
        )
        try:
            if proc.stdin is None:
                raise _WorkerDied("worker has no stdin pipe")
            with trio.fail_after(START_TIMEOUT):
                await proc.stdin.send_all(frame(init))
                reply = await worker.receive()
        except (trio.TooSlowError, _WorkerDied, trio.BrokenResourceError) as exc:
            await worker.stop()
            raise HsmUnavailable(f"signer worker failed to start: {exc}") from exc
        except BaseException:
            await worker.stop()
            raise
        if isinstance(reply, WorkerFailed):
            await worker.stop()
            raise HsmUnavailable(reply.message)
        if not isinstance(reply, WorkerReady):
            await worker.stop()
            raise HsmUnavailable("signer worker answered its start-up with something else")
        self._key_types = reply.key_types
        return worker

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Start the workers (failing fast on a bad PIN or key), then supervise them."""
        if self._running:
            raise SignerError("the signer is already running")
        first: dict[int, _Worker] = {}
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

    async def _supervise(self, slot: int, worker: _Worker) -> None:
        backoff = iter(RESTART_BACKOFF)
        while True:
            reason = "worker stopped"
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._read_results, worker)
                    for _ in range(self._pipeline):
                        nursery.start_soon(self._feed, worker)
            except* _WorkerDied as group:
                reason = str(group.exceptions[0])
            finally:
                lost = [r for b in worker.inflight.values() for r in b.requests]
                for b in worker.inflight.values():
                    b.done.set()
                worker.inflight.clear()
                with trio.CancelScope(shield=True):
                    if worker.proc.returncode is None:
                        worker.proc.kill()
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
                    await trio.sleep(next(backoff, RESTART_BACKOFF[-1]))
            backoff = iter(RESTART_BACKOFF)
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

    async def _feed(self, worker: _Worker) -> None:
        while True:
            batch = await self._take_batch(worker)
            worker.inflight[batch.id] = batch
            await worker.send(batch)
            with trio.move_on_after(self._batch_timeout):
                await batch.done.wait()
            if not batch.done.is_set():
                raise _WorkerDied(
                    f"worker {worker.pid} did not answer within {self._batch_timeout:g}s"
                )

    async def _read_results(self, worker: _Worker) -> None:
        counts = self._per_slot[worker.slot]
        while True:
            msg = await worker.receive()
            if not isinstance(msg, BatchResult):
                raise _WorkerDied(f"worker {worker.pid} sent an unexpected message")
            batch = worker.inflight.get(msg.batch_id)
            if batch is None:
                continue
            signatures, errors = msg.signatures, msg.errors
            n = sum(r.count for r in batch.requests)
            if len(signatures) != n:  # still in flight: retried with the worker's others
                raise _WorkerDied(
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
            counts[0] += 1
            counts[1] += n
            batch.done.set()
