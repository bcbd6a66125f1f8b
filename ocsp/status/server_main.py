"""A status responder process: `python -m ocsp.status.server_main SETTINGS`
(ocsp/status/supervisor.py starts several on one port). It opens its source (the LMDB
store, PostgreSQL, or a responder host's copy), listens, prints "ready" for the
supervisor, and serves with ocsp/status/server.py until SIGTERM, a new CA profile in
the copy, or its parent's death.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import sys
from pathlib import Path

import lmdb
import msgspec
import uvloop

from core.base import children
from core.base.errors import HankoError
from ocsp.status.process import listening_socket, raise_open_files
from ocsp.status.protocol import Protocol
from ocsp.status.server import ResponderState
from ocsp.status.settings import ServerSettings
from ocsp.status.sources import Source, lmdb_source

STALE_CHECK = 1.0  # seconds between looks at whether the source still holds


async def _until_stale(source: Source, stop: asyncio.Event) -> None:
    while not source.stale():
        await asyncio.sleep(STALE_CHECK)
    stop.set()


async def serve(settings: ServerSettings) -> None:
    loop = asyncio.get_running_loop()
    fits = raise_open_files()
    if settings.copy_path:
        from ocsp.status.copy_source import copy_source

        source = copy_source(Path(settings.copy_path))
    else:
        source = lmdb_source(settings)
    state = ResponderState(settings, source)
    state.capacity = min(settings.max_connections, fits)
    sock = listening_socket(settings.host, settings.port)
    server = await loop.create_server(lambda: Protocol(state), sock=sock)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    ticker = asyncio.create_task(state.ticker())
    # Everything alive now (modules, the issuer, settings) lives as long as the process:
    # out of the collector's sight, a full collection only walks what serving creates.
    gc.freeze()
    print("ready", flush=True)  # the supervisor waits for this line
    os.set_blocking(1, False)
    # A new CA profile: exit, to be started again with it.
    watcher = asyncio.create_task(_until_stale(source, stop))
    await stop.wait()
    server.close()
    for task in (ticker, watcher):
        task.cancel()
    for proto in list(state.connections):
        proto.transport.close()
    with contextlib.suppress(asyncio.CancelledError):
        await ticker
    state.close()


def main(argv: list[str]) -> int:
    try:
        settings = msgspec.json.decode(argv[1].encode(), type=ServerSettings)
    except (IndexError, msgspec.ValidationError, msgspec.DecodeError) as exc:
        print(f"hanko ocsp responder: bad settings: {exc}", file=sys.stderr)
        return 2
    # Startup failures go to stdout as one "error ..." line: the supervisor reads it
    # and reports it as the reason `hanko serve` cannot start.
    # A responder must not outlive `hanko serve`, even one killed with SIGKILL.
    children.exit_with_parent(os.getppid())
    try:
        uvloop.run(serve(settings))
    except OSError as exc:
        print(f"error cannot listen on {settings.host}:{settings.port}: {exc.strerror}", flush=True)
        return 1
    except (lmdb.Error, HankoError) as exc:
        where = settings.copy_path or settings.store_path
        where = f"copy {where}" if settings.copy_path else f"store {where}"
        print(f"error {where}: {exc}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
