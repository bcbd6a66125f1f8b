"""Runs the responder processes for `hanko serve` and `hanko responder` (and the
copier of a responder host): starts them, waits until each is ready, restarts one
that dies, and stops them all when the service stops."""

from __future__ import annotations

import contextlib
import logging
import sys

import msgspec
import trio

from core.base import children
from core.base.errors import HankoError
from ocsp.status.settings import CopierSettings, ServerSettings

log = logging.getLogger("hanko.ocsp")
_COUNTS = msgspec.json.Decoder(dict[str, int])
RESPONDER = "ocsp.status.server_main"
COPIER = "ocsp.status.copier_main"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 5.0
# A responder that keeps dying is restarted less and less often, down to every 5 s.
RESTART_WAITS = (1.0, 2.0, 5.0)
HEALTHY_FOR = 60.0  # a responder that ran this long is restarted at the first wait again


class ResponderStatistics(msgspec.Struct, frozen=True):
    processes: int
    alive: int
    restarts: int
    pids: list[int]
    # Answers by kind, summed over every responder since the start (a restarted
    # responder's last report is kept): successful, malformed_request, unauthorized,
    # try_later, cache_misses, not_modified, files, not_found, shed.
    counts: dict[str, int]


class ResponderProcesses:
    def __init__(
        self,
        settings: ServerSettings | CopierSettings,
        count: int,
        *,
        start_timeout: float = START_TIMEOUT,
        module: str = RESPONDER,
        what: str = "OCSP responder",
    ) -> None:
        """`start_timeout`: how long a process may take to say it is ready; `module`
        the one it runs (python -m), `what` its name in logs and errors."""
        self._settings = settings
        self._start_timeout = start_timeout
        self._module = module
        self._what = what
        self._argv = _argv(settings, module)
        self._count = count
        self._restarts = 0
        self._procs: list[trio.Process] = []
        self._readers: trio.Nursery | None = None
        self._reported: dict[int, dict[str, int]] = {}  # by pid: its last stats line
        self._gone: dict[str, int] = {}  # what responders that exited had reported

    def statistics(self) -> ResponderStatistics:
        counts = dict(self._gone)
        for reported in self._reported.values():
            for name, n in reported.items():
                counts[name] = counts.get(name, 0) + n
        return ResponderStatistics(
            processes=self._count,
            alive=sum(p.returncode is None for p in self._procs),
            restarts=self._restarts,
            pids=[p.pid for p in self._procs],
            counts=counts,
        )

    async def _read_stats(self, proc: trio.Process) -> None:
        """The responder's stats lines, until it exits (then its totals are kept)."""
        stdout = proc.stdout
        assert stdout is not None  # noqa: S101 - spawn() gives it one
        buffered = b""
        try:
            while chunk := await stdout.receive_some(4096):
                buffered += chunk
                *lines, buffered = buffered.split(b"\n")
                for line in lines:
                    if line.startswith(b"stats "):
                        with contextlib.suppress(msgspec.DecodeError, msgspec.ValidationError):
                            self._reported[proc.pid] = _COUNTS.decode(line[6:])
        finally:
            last = self._reported.pop(proc.pid, {})
            for name, n in last.items():
                self._gone[name] = self._gone.get(name, 0) + n

    async def _start(self) -> trio.Process:
        proc = await children.spawn(self._argv)
        line, eof = await children.ready_line(proc, self._start_timeout)
        if line != "ready":
            proc.kill()
            await proc.wait()
            reason = line.removeprefix("error ") or (
                "exited before listening (see its error above)" if eof else "did not start in time"
            )
            raise HankoError(f"{self._what}: {reason}", code="ocsp_responder_failed")
        return proc

    async def run(self, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
        procs = self._procs = []
        try:
            for _ in range(self._count):
                procs.append(await self._start())
            s = self._settings
            task_status.started(f"{s.host}:{s.port}" if isinstance(s, ServerSettings) else s.path)
            async with trio.open_nursery() as nursery:
                self._readers = nursery
                for slot in range(len(procs)):
                    nursery.start_soon(self._read_stats, procs[slot])
                    nursery.start_soon(self._watch, procs, slot)
        finally:
            with trio.CancelScope(shield=True):
                for p in procs:  # all asked at once, so they stop in parallel
                    if p.returncode is None:
                        p.terminate()
                for p in procs:
                    await children.stop(p, grace=STOP_TIMEOUT)

    async def replace(self, settings: ServerSettings) -> None:
        """Responders with these settings in place of the running ones (a reload added
        an issuer), one at a time: the new one listens beside the old one (SO_REUSEPORT)
        before the old one is stopped, so the port never goes unanswered."""
        readers = self._readers
        if readers is None:
            raise HankoError("OCSP responders are not running", code="ocsp_responder_failed")
        argv = _argv(settings, self._module)
        procs = self._procs
        for slot, old in enumerate(list(procs)):
            self._argv = argv
            new = await self._start()
            procs[slot] = new  # _watch follows the new one; the old one's exit is no fault
            readers.start_soon(self._read_stats, new)
            old.terminate()
            await children.stop(old, grace=STOP_TIMEOUT)
        self._settings = settings

    async def _watch(self, procs: list[trio.Process], slot: int) -> None:
        readers = self._readers
        assert readers is not None  # noqa: S101 - run() started this
        backoff = children.Backoff(RESTART_WAITS)
        while True:
            started = trio.current_time()
            watched = procs[slot]
            code = await watched.wait()
            if procs[slot] is not watched:  # replaced on purpose (replace())
                continue
            if trio.current_time() - started > HEALTHY_FOR:
                backoff.reset()
            log.warning("%s %d exited with %s; restarting it", self._what, slot, code)
            self._restarts += 1
            await trio.sleep(backoff.next())
            procs[slot] = await self._start()
            readers.start_soon(self._read_stats, procs[slot])


def _argv(settings: ServerSettings | CopierSettings, module: str) -> list[str]:
    return [sys.executable, "-m", module, msgspec.json.encode(settings).decode()]
