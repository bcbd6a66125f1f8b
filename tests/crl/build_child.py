"""A CRL builder for the crash test: publishes partition 0 in full, through a signer
that announces the signature on stdout and then never answers, so the test can kill it
with SIGKILL after the CRL number was taken and before the file was written."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import trio

from core.base.clock import SystemClock
from core.base.errors import SignerError
from core.cmd.wiring import crl_publisher, signer_pool, store_writer
from core.config import load_config
from core.store.configured import open_store
from signer.algorithms import SignAlgorithm
from signer.api import Priority
from signer.pool import SignerPool


class Stalling:
    def __init__(self, pool: SignerPool) -> None:
        self._pool = pool

    async def sign_many(
        self,
        items: Sequence[tuple[str, SignAlgorithm, bytes]],
        *,
        priority: Priority = Priority.BULK,
        wait: bool = True,
    ) -> list[bytes | SignerError]:
        return await self._pool.sign_many(items, priority=priority, wait=wait)

    async def sign_digest(
        self, label: str, alg: SignAlgorithm, digest: bytes, *, priority: Priority = Priority.BULK
    ) -> bytes:
        print("signing", flush=True)
        await trio.sleep_forever()
        raise AssertionError("unreachable")


async def main(config: Path) -> None:
    cfg = load_config(config)
    store = open_store(cfg)
    pool = signer_pool(cfg, workers=1)
    writer = store_writer(cfg, store)
    async with trio.open_nursery() as nursery:
        await nursery.start(writer.run)
        await nursery.start(pool.run)
        publisher = crl_publisher(
            cfg, signer=Stalling(pool), store=store, writer=writer, clock=SystemClock()
        )
        await publisher.publish_full(0)


if __name__ == "__main__":
    trio.run(main, Path(sys.argv[1]))
