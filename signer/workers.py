"""Signer worker processes as the pool sees them: starting one (log-in and key check
before it takes work), its pipe, and stopping it."""

from __future__ import annotations

import sys
from collections import deque
from dataclasses import dataclass, field

import trio

from core.base import children
from core.base.errors import HsmUnavailable
from signer.messages import (
    FROM_WORKER,
    FrameBuffer,
    SignBatch,
    WorkerFailed,
    WorkerInit,
    WorkerReady,
    frame,
)
from signer.requests import Batch

START_TIMEOUT = 30.0
STOP_GRACE = 2.0


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker needs to log in. The PIN travels over the worker's private pipe."""

    module: str
    token_label: str
    pin: str = field(repr=False)
    softhsm_conf: str | None
    key_labels: tuple[str, ...]


class WorkerDied(Exception):
    """The worker's pipe closed, it exited, or it broke the protocol."""


class WorkerProcess:
    """One worker process and its pipe, as seen from the core."""

    def __init__(self, slot: int, proc: trio.Process, pid: int) -> None:
        self.slot = slot
        self.proc = proc
        self.pid = pid
        self.inflight: dict[int, Batch] = {}
        self.send_lock = trio.Lock()
        self.frames = FrameBuffer()
        self.pending_frames: deque[bytes] = deque()

    async def send(self, batch: Batch) -> None:
        data = frame(
            SignBatch(batch.id, [(r.label, r.alg, r.messages[r.lo : r.hi]) for r in batch.requests])
        )
        stdin = self.proc.stdin
        if stdin is None:
            raise WorkerDied(f"worker {self.pid} has no stdin pipe")
        try:
            async with self.send_lock:
                await stdin.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise WorkerDied(f"worker {self.pid} pipe closed") from exc

    async def receive(self) -> object:
        """The next message from the worker; WorkerDied at end of stream."""
        stdout = self.proc.stdout
        if stdout is None:
            raise WorkerDied(f"worker {self.pid} has no stdout pipe")
        while not self.pending_frames:
            try:
                data = await stdout.receive_some(1 << 16)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                raise WorkerDied(f"worker {self.pid} pipe closed") from exc
            if not data:
                raise WorkerDied(f"worker {self.pid} exited")
            self.pending_frames.extend(self.frames.feed(data))
        return FROM_WORKER.decode(self.pending_frames.popleft())

    async def stop(self) -> None:
        """Close stdin so the worker finishes and exits; kill it if it lingers."""
        await children.stop(self.proc, grace=STOP_GRACE, ask=_close_stdin)


async def start_worker(spec: WorkerSpec, slot: int) -> tuple[WorkerProcess, dict[str, str]]:
    """A logged-in worker for `slot`, and the key types it found; HsmUnavailable if it
    cannot log in or find its keys."""
    proc = await children.spawn([sys.executable, "-m", "signer.worker"], stdin=True)
    worker = WorkerProcess(slot, proc, proc.pid)
    init = WorkerInit(
        spec.module,
        spec.token_label,
        spec.pin,
        spec.softhsm_conf,
        list(spec.key_labels),
    )
    try:
        if proc.stdin is None:
            raise WorkerDied("worker has no stdin pipe")
        with trio.fail_after(START_TIMEOUT):
            await proc.stdin.send_all(frame(init))
            reply = await worker.receive()
    except (trio.TooSlowError, WorkerDied, trio.BrokenResourceError) as exc:
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
    return worker, reply.key_types


async def _close_stdin(proc: trio.Process) -> None:
    if proc.stdin is not None:
        await proc.stdin.aclose()
