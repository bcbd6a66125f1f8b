"""A status responder process: `python -m ocsp.status.server_main SETTINGS`
(ocsp/status/supervisor.py starts several on one port). It opens its source (the LMDB
store, PostgreSQL, or a Redis replica's copy), listens, prints "ready" for the
supervisor, and serves with ocsp/status/server.py until SIGTERM, a new CA profile on
Redis, or its parent's death.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import sys
from typing import Any

import lmdb
import msgspec
import uvloop

from core.base import children
from core.base.errors import HankoError
from ocsp.status.process import listening_socket, raise_open_files
from ocsp.status.server import Protocol, ResponderState
from ocsp.status.settings import ServerSettings
from ocsp.status.sources import FIRST_LOAD, lmdb_source, redis_edge, redis_source


async def serve(settings: ServerSettings) -> None:
    loop = asyncio.get_running_loop()
    fits = raise_open_files()
    edge = redis_edge(settings) if settings.redis else None
    follow: asyncio.Task[None] | None = None
    if edge is not None:
        await edge.start(FIRST_LOAD)
        source = redis_source(edge)
        follow = asyncio.create_task(edge.run())
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
    waits: list[asyncio.Task[Any]] = [asyncio.create_task(stop.wait())]
    if edge is not None and follow is not None:
        # A new CA profile, or the follower failing (a bug): exit, to be started again.
        waits += [asyncio.create_task(edge.profile_changed.wait()), follow]
    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    server.close()
    for task in (ticker, follow, *waits):
        if task is not None:
            task.cancel()
    for proto in list(state.connections):
        proto.transport.close()
    with contextlib.suppress(asyncio.CancelledError):
        await ticker
    state.close()
    if edge is not None:
        await edge.close()
    if follow is not None and follow.done() and not follow.cancelled():
        follow.result()  # re-raised: its traceback says what failed


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
        where = settings.redis or f"store {settings.store_path}"
        print(f"error {where}: {exc}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
