"""A responder host's copier: `python -m ocsp.status.copier_main SETTINGS` (`hanko
responder` starts one and restarts it when it dies). It opens the host's copy, prints
"ready" (the responders may start: the copy answers from what it holds), then keeps
it equal to Redis (ocsp/status/copier.py) until SIGTERM or its parent's death.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import lmdb
import msgspec
import redis.asyncio as aioredis
import uvloop

from core.base import children, logs
from core.base.errors import HankoError
from ocsp.status.copier import Copier
from ocsp.status.copy_store import CopyStore
from ocsp.status.settings import CopierSettings
from ocsp.status.sources import PASSWORD_ENV


async def copy(settings: CopierSettings) -> None:
    store = CopyStore(Path(settings.path))
    client = aioredis.Redis.from_url(
        settings.redis,
        password=os.environ.get(PASSWORD_ENV) or None,
        socket_timeout=settings.timeout + 1.0,  # longer than a blocking read of the log
        socket_connect_timeout=settings.timeout,
    )
    copier = Copier(
        client,
        store,
        prefix=settings.prefix,
        max_lag=settings.max_lag,
        clock=time.time,
        monotonic=time.monotonic,
    )
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print("ready", flush=True)
    running = asyncio.create_task(copier.run())
    waiting = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait([running, waiting], return_when=asyncio.FIRST_COMPLETED)
    finally:
        running.cancel()
        waiting.cancel()
        await asyncio.gather(running, waiting, return_exceptions=True)
        await client.aclose()
        store.close()
    if running.done() and not running.cancelled() and running.exception() is not None:
        running.result()  # a bug: its traceback says what failed


def main(argv: list[str]) -> int:
    try:
        settings = msgspec.json.decode(argv[1].encode(), type=CopierSettings)
    except (IndexError, msgspec.ValidationError, msgspec.DecodeError) as exc:
        print(f"hanko responder copier: bad settings: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings.log_format, settings.log_level)
    children.exit_with_parent(os.getppid())
    try:
        uvloop.run(copy(settings))
    except (lmdb.Error, HankoError, OSError) as exc:
        print(f"error copy {settings.path}: {exc}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
