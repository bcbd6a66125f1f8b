"""Child processes, one way for every kind (signer workers, OCSP responders, intake):
start one, wait for its ready line, restart with backoff, stop it within a bound, and
make a child go when its parent goes, even a parent killed with SIGKILL."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Awaitable, Callable, Sequence

import trio

RESTART_BACKOFF = (0.1, 0.5, 1.0, 2.0, 5.0)  # seconds before each attempt to replace
PARENT_CHECK_SECONDS = 0.5


class Backoff:
    """The waits between attempts to replace a child: growing, then staying at the last."""

    def __init__(self, steps: Sequence[float] = RESTART_BACKOFF) -> None:
        self._steps = tuple(steps)
        self._next = 0

    def next(self) -> float:
        wait = self._steps[min(self._next, len(self._steps) - 1)]
        self._next += 1
        return wait

    def reset(self) -> None:
        self._next = 0


async def spawn(argv: Sequence[str], *, stdin: bool = False) -> trio.Process:
    """Start a child whose stdout is a pipe to us (and stdin too when asked)."""
    return await trio.lowlevel.open_process(
        list(argv), stdin=subprocess.PIPE if stdin else None, stdout=subprocess.PIPE
    )


async def ready_line(proc: trio.Process, timeout: float) -> tuple[str, bool]:
    """The first line the child writes (without its newline), and whether it closed
    stdout first. "" if nothing came within `timeout`."""
    stdout = proc.stdout
    if stdout is None:
        raise ValueError("the child has no stdout pipe")
    line = b""
    with trio.move_on_after(timeout):
        while not line.endswith(b"\n"):
            chunk = await stdout.receive_some(1)
            if not chunk:
                return line.decode(errors="replace").strip(), True
            line += chunk
    return line.decode(errors="replace").strip(), False


async def terminate(proc: trio.Process) -> None:
    proc.terminate()


async def stop(
    proc: trio.Process,
    *,
    grace: float,
    ask: Callable[[trio.Process], Awaitable[None]] = terminate,
) -> None:
    """Ask the child to stop (SIGTERM, or `ask` it another way), wait up to `grace`
    seconds, then kill it. Shielded: it runs to the end even while being cancelled."""
    with trio.CancelScope(shield=True):
        if proc.returncode is None:
            await ask(proc)
        with trio.move_on_after(grace):
            await proc.wait()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def exit_with_parent(parent: int, *, interval: float = PARENT_CHECK_SECONDS) -> None:
    """In a child: exit as soon as `parent` is no longer our parent (it died, even by
    SIGKILL, and we were re-parented). A thread, because the child's main loop may be
    blocked in a queue or an event loop. (PR_SET_PDEATHSIG does not fit: it fires when
    the forking *thread* ends, and trio forks from a worker thread it retires.)"""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()
