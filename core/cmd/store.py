"""`hanko store`: the store itself (schema migrations of a PostgreSQL store, copies
between back ends)."""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path
from typing import Any

from core.cmd.common import Parser, add_config, config, print_json


def cmd_migrate(args: argparse.Namespace) -> int:
    from core.base.errors import StepWaits
    from core.store.configured import migrate

    cfg = config(args)
    if args.plan:
        _, version, steps = migrate(cfg.store, cfg, to=args.to, plan=True)
        if args.json:
            print_json({"version": version, "steps": steps})
        else:
            print_plan(version, steps)
        return 0
    try:
        applied, version, _ = migrate(cfg.store, cfg, to=args.to)
    except StepWaits as exc:
        if exc.done:
            print(f"applied migrations {', '.join(map(str, exc.done))}", file=sys.stderr)
        raise
    if args.json:
        print_json({"applied": applied, "version": version})
    elif applied:
        print(
            f"applied migrations {', '.join(map(str, applied))}: the store is at version {version}"
        )
    else:
        print(f"the store is at version {version}: nothing to apply")
    return 0


def print_plan(version: int, steps: list[dict[str, Any]]) -> None:
    if not steps:
        print(f"the store is at version {version}: nothing to apply")
        return
    print(f"the store is at version {version}; `hanko store migrate` would apply:")
    for step in steps:
        print(f"\nstep {step['version']} {step['name']} ({step['kind']}):")
        print(textwrap.fill(step["summary"], 88, initial_indent="  ", subsequent_indent="  "))
        if step["rows"]:
            print(f"  rows it converts or fills: {step['rows']}")
        if step["waits_for"]:
            print(f"  WAITS: {step['waits_for']}")
        for statement in step["sql"]:
            print(textwrap.indent(statement, "    "))


def register(sub: Any) -> None:
    p = sub.add_parser("store", help="the store: schema migrations, copies between back ends")
    store = p.add_subparsers(dest="store_command", required=True, parser_class=Parser)
    m = store.add_parser(
        "migrate", help="apply the PostgreSQL schema migrations this hanko needs (idempotent)"
    )
    add_config(m)
    m.add_argument(
        "--plan", action="store_true", help="show what each pending step would do; apply nothing"
    )
    m.add_argument(
        "--to",
        type=int,
        default=None,
        metavar="N",
        help="stop at schema step N (a rolling upgrade applies its expand step first)",
    )
    m.add_argument("--json", action="store_true", help="print the result as JSON")
    m.set_defaults(func=cmd_migrate)
    c = store.add_parser(
        "copy",
        help="copy a whole store into an empty one of either back end (LMDB, PostgreSQL),"
        " verified by counts and the licence books",
    )
    c.add_argument("--from", dest="source", type=Path, required=True, metavar="CFG_A")
    c.add_argument("--to", dest="target", type=Path, required=True, metavar="CFG_B")
    c.add_argument("--json", action="store_true", help="print the result as JSON")
    c.set_defaults(func=cmd_copy)


def cmd_copy(args: argparse.Namespace) -> int:
    import time

    from core.base.clock import SystemClock
    from core.base.errors import StoreError
    from core.cmd.wiring import license_settings
    from core.config import load_config
    from core.licenses.desk import LicenseDesk
    from core.store import LmdbStore
    from core.store.configured import open_store
    from core.store.copy import copy_store

    source_cfg, target_cfg = load_config(args.source), load_config(args.target)
    if source_cfg.store == target_cfg.store and source_cfg.base_dir == target_cfg.base_dir:
        raise StoreError("--from and --to name the same store")
    target_cfg_store = target_cfg.store
    if target_cfg_store.backend == "lmdb":
        path = target_cfg.path(target_cfg_store.path)
        if not (path / "data.mdb").exists():
            path.mkdir(parents=True, exist_ok=True, mode=0o700)
            LmdbStore(path, create=True, map_size=target_cfg_store.map_size.bytes).close()
    with open_store(source_cfg, readonly=True) as source, open_store(target_cfg) as target:
        report = copy_store(source, target, clock=time.monotonic)
        with target.read() as txn:
            books = LicenseDesk(license_settings(target_cfg), SystemClock()).check(txn)
    if args.json:
        import msgspec

        print_json({**msgspec.to_builtins(report), "licenses_check_ok": books.ok})
    else:
        print(
            f"copied {report.rows} rows in {len(report.tables)} tables in {report.seconds:g} s;"
            f" every table's count matches; {books.ledger_entries} ledger entries of"
            f" {books.licenses} licenses: {'the books balance' if books.ok else 'PROBLEMS FOUND'}"
        )
    return 0 if books.ok else 1
