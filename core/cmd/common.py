"""What every `hanko` subcommand shares: the parser class, `-c CONFIG`, the steps most
commands take (load the configuration, open its store to read one snapshot or to write
one op, print JSON or lines), and running a job with a one-worker signer and the store
writer."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Awaitable, Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

if TYPE_CHECKING:
    from core.config import Config
    from core.store import ReadTxn, WriteTxn

T = TypeVar("T")

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


def config(args: argparse.Namespace) -> Config:
    """The configuration `-c` (or $HANKO_CONFIG) names, checked."""
    from core.config import load_config

    return load_config(args.config)


@contextlib.contextmanager
def reading(cfg: Config) -> Iterator[ReadTxn]:
    """One read snapshot of the configuration's store (opened read-only)."""
    from core.store.configured import open_store

    with open_store(cfg, readonly=True) as store, store.read() as txn:
        yield txn


def write(cfg: Config, op: Callable[[WriteTxn], T]) -> T:
    """One durable write op on the configuration's store."""
    from core.store.configured import open_store

    with open_store(cfg) as store:
        return store.write(op)


def emit(args: argparse.Namespace, data: Any, lines: Iterable[str] = ()) -> int:
    """With --json the data (Structs too) as JSON, else the lines; exit status 0."""
    if getattr(args, "json", False):
        import msgspec

        print_json(msgspec.to_builtins(data))
    else:
        for line in lines:
            print(line)
    return 0


def run_with_writer(cfg: Any, job: Callable[[Any, Any, Any], Awaitable[T]]) -> T:
    """Run `job(store, writer, nursery)` with the configuration's store and its writer
    running, then stop everything the job started in the nursery."""
    import trio

    from core.cmd.wiring import store_writer
    from core.store.configured import open_store

    store = open_store(cfg)
    result: list[T] = []
    try:

        async def main() -> None:
            writer = store_writer(cfg, store)
            async with trio.open_nursery() as nursery:
                await nursery.start(writer.run)
                result.append(await job(store, writer, nursery))
                nursery.cancel_scope.cancel()

        trio.run(main)
    finally:
        store.close()
    return result[0]


def run_with_engine(cfg: Any, job: Callable[[Any], Awaitable[Any]]) -> Any:
    """Run `job(engine)` with a one-worker signer and the store writer, then stop both."""
    from core.base.clock import SystemClock
    from core.cmd.wiring import issuance_engine, signer_pool

    async def with_engine(store: Any, writer: Any, nursery: Any) -> Any:
        pool = signer_pool(cfg, workers=1)
        await nursery.start(pool.run)
        engine = issuance_engine(cfg, signer=pool, store=store, writer=writer, clock=SystemClock())
        return await job(engine)

    return run_with_writer(cfg, with_engine)
