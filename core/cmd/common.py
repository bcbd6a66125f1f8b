"""What every `hanko` subcommand shares: the parser class, `-c CONFIG`, JSON output,
and running a job with a one-worker signer and the store writer."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, NoReturn

EXIT_FAILURE = 1
EXIT_USAGE = 2


class Parser(argparse.ArgumentParser):
    """argparse that reports a usage error in one line instead of a usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def add_config(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-c",
        "--config",
        type=Path,
        default=None,
        help="configuration file (default: $HANKO_CONFIG)",
    )


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + "\n")


def print_struct(obj: Any) -> None:
    import msgspec

    print_json(msgspec.to_builtins(obj))


def run_with_engine(cfg: Any, job: Callable[[Any], Awaitable[Any]]) -> Any:
    """Run `job(engine)` with a one-worker signer and the store writer, then stop both."""
    import trio

    from core.base.clock import SystemClock
    from core.cmd.wiring import issuance_engine, signer_pool, store_writer
    from core.store.configured import open_store

    store = open_store(cfg)
    result: list[Any] = []
    try:

        async def main() -> None:
            pool = signer_pool(cfg, workers=1)
            writer = store_writer(cfg, store)
            async with trio.open_nursery() as nursery:
                await nursery.start(writer.run)
                await nursery.start(pool.run)
                engine = issuance_engine(
                    cfg, signer=pool, store=store, writer=writer, clock=SystemClock()
                )
                result.append(await job(engine))
                nursery.cancel_scope.cancel()

        trio.run(main)
    finally:
        store.close()
    return result[0]
