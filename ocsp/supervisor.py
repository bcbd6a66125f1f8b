"""Runs the responder processes for `hanko serve`: starts them, waits until each
listens, restarts one that dies, and stops them all when the service stops."""

from __future__ import annotations

import logging
import sys

import msgspec
import trio

from core.base import children
from core.base.errors import HankoError
from ocsp.settings import ServerSettings

log = logging.getLogger("hanko.ocsp")
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


class ResponderProcesses:
    def __init__(self, settings: ServerSettings, count: int) -> None:
        self._settings = settings
        self._argv = [
            sys.executable,
            "-m",
            "ocsp.server",
            msgspec.json.encode(settings).decode(),
        ]
        self._count = count
        self._restarts = 0
        self._procs: list[trio.Process] = []

    def statistics(self) -> ResponderStatistics:
        return ResponderStatistics(
            processes=self._count,
            alive=sum(p.returncode is None for p in self._procs),
            restarts=self._restarts,
            pids=[p.pid for p in self._procs],
        )

    async def _start(self) -> trio.Process:
        proc = await children.spawn(self._argv)
        line, eof = await children.ready_line(proc, START_TIMEOUT)
        if line != "ready":
            proc.kill()
            await proc.wait()
            reason = line.removeprefix("error ") or (
                "exited before listening (see its error above)" if eof else "did not start in time"
            )
            raise HankoError(f"OCSP responder: {reason}", code="ocsp_responder_failed")
        return proc

    async def run(self, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
        procs = self._procs = []
        try:
            for _ in range(self._count):
                procs.append(await self._start())
            task_status.started(f"{self._settings.host}:{self._settings.port}")
            async with trio.open_nursery() as nursery:
                for slot in range(len(procs)):
                    nursery.start_soon(self._watch, procs, slot)
        finally:
            with trio.CancelScope(shield=True):
                for p in procs:  # all asked at once, so they stop in parallel
                    if p.returncode is None:
                        p.terminate()
                for p in procs:
                    await children.stop(p, grace=STOP_TIMEOUT)

    async def _watch(self, procs: list[trio.Process], slot: int) -> None:
        backoff = children.Backoff(RESTART_WAITS)
        while True:
            started = trio.current_time()
            code = await procs[slot].wait()
            if trio.current_time() - started > HEALTHY_FOR:
                backoff.reset()
            log.warning("OCSP responder %d exited with %s; restarting it", slot, code)
            self._restarts += 1
            await trio.sleep(backoff.next())
            procs[slot] = await self._start()
