"""`hanko replication status` (how far Redis has been brought: the store's feed, its
cursor, and Redis's own `seq`) and `hanko replication resync` (Redis rebuilt from
the store: every response, envelope and CRL file)."""

from __future__ import annotations

import argparse
from typing import Any

from core.cmd.common import Parser, add_config, config, emit, print_json, reading


def _redis_seq(cfg: Any) -> tuple[int | None, str | None]:
    from core.cmd.wiring_replication import redis_client_factory
    from ocsp.status.redis_layout import Layout

    try:
        raw = redis_client_factory(cfg)().get(Layout(cfg.replication.prefix).seq)
    except Exception as exc:  # unreachable, refused, a wrong password: say so
        return None, f"{type(exc).__name__}: {exc}"
    return (int(raw) if raw is not None else None), None


def cmd_status(args: argparse.Namespace) -> int:
    from core.base.errors import ConfigError

    cfg = config(args)
    if not cfg.replication.redis:
        raise ConfigError(["replication.redis: not set: status is not replicated"])
    with reading(cfg) as txn:
        on = txn.replication_on()
        fed, cursor = txn.replication_position()
    redis_seq, error = _redis_seq(cfg)
    out = {
        "feeding": on,
        "fed": fed,
        "cursor": cursor,
        "lag": fed - cursor,
        "redis_seq": redis_seq,
        "redis_error": error,
    }
    if args.json:
        print_json(out)
        return 0
    state = "feeding" if on else "not feeding (hanko serve turns it on)"
    where = f"Redis at seq {redis_seq}" if error is None else f"Redis unreachable: {error}"
    print(f"{state}; {fed - cursor} changes not in Redis (fed {fed}, cursor {cursor}); {where}")
    return 0


def cmd_resync(args: argparse.Namespace) -> int:
    import time

    import trio

    from core.cmd.wiring import store_writer
    from core.cmd.wiring_replication import replicator
    from core.store.configured import open_store

    cfg = config(args)
    store = open_store(cfg)
    try:
        writer = store_writer(cfg, store)
        rep = replicator(cfg, store=store, writer=writer)
        if rep is None:
            from core.base.errors import ConfigError

            raise ConfigError(["replication.redis: not set: nothing to resync"])
        started = time.monotonic()
        result: list[int] = []

        async def main() -> None:
            async with trio.open_nursery() as nursery:
                await nursery.start(writer.run)
                result.append(await rep.resync_now())
                nursery.cancel_scope.cancel()

        trio.run(main)
    finally:
        store.close()
    took = time.monotonic() - started
    return emit(
        args,
        {"keys": result[0], "seconds": round(took, 3)},
        [f"Redis rebuilt: {result[0]} keys in {took:.1f} s"],
    )


def register(sub: Any) -> None:
    p = sub.add_parser("replication", help="status replication to Redis: lag, rebuild")
    r = p.add_subparsers(dest="replication_cmd", required=True, parser_class=Parser)
    s = r.add_parser("status", help="changes not in Redis yet, and Redis's own position")
    add_config(s)
    s.add_argument("--json", action="store_true", help="print the result as JSON")
    s.set_defaults(func=cmd_status)
    s = r.add_parser("resync", help="rebuild Redis from the store (hanko serve may run)")
    add_config(s)
    s.add_argument("--json", action="store_true", help="print the result as JSON")
    s.set_defaults(func=cmd_resync)
