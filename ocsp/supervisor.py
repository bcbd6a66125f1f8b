"""Runs the responder processes for `hanko serve`: starts them, waits until each
listens, restarts one that dies, and stops them all when the service stops."""

from __future__ import annotations

import logging
import subprocess
import sys

import msgspec
import trio

from core.base.errors import HankoError
from ocsp.server import ServerSettings

log = logging.getLogger("hanko.ocsp")
START_TIMEOUT = 30.0
STOP_TIMEOUT = 5.0


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
        self.restarts = 0

    async def _start(self) -> trio.Process:
        proc = await trio.lowlevel.open_process(self._argv, stdout=subprocess.PIPE)
        if proc.stdout is None:  # cannot happen with stdout=PIPE; keeps mypy honest
            raise HankoError("OCSP responder: no stdout pipe")
        line = b""
        eof = False
        with trio.move_on_after(START_TIMEOUT):
            while not line.endswith(b"\n"):
                chunk = await proc.stdout.receive_some(1)
                if not chunk:
                    eof = True
                    break
                line += chunk
        if line.strip() != b"ready":
            proc.kill()
            await proc.wait()
            reason = line.decode(errors="replace").strip().removeprefix("error ") or (
                "exited before listening (see its error above)" if eof else "did not start in time"
            )
            raise HankoError(f"OCSP responder: {reason}", code="ocsp_responder_failed")
        return proc

    async def run(self, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
        procs: list[trio.Process] = []
        try:
            for _ in range(self._count):
                procs.append(await self._start())
            task_status.started(f"{self._settings.host}:{self._settings.port}")
            async with trio.open_nursery() as nursery:
                for slot in range(len(procs)):
                    nursery.start_soon(self._watch, procs, slot)
        finally:
            with trio.CancelScope(shield=True):
                for p in procs:
                    if p.returncode is None:
                        p.terminate()
                with trio.move_on_after(STOP_TIMEOUT):
                    for p in procs:
                        await p.wait()
                for p in procs:
                    if p.returncode is None:
                        p.kill()
                        await p.wait()

    async def _watch(self, procs: list[trio.Process], slot: int) -> None:
        while True:
            code = await procs[slot].wait()
            log.warning("OCSP responder %d exited with %s; restarting it", slot, code)
            self.restarts += 1
            await trio.sleep(1)
            procs[slot] = await self._start()
