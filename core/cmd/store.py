"""`hanko store`: the store itself (schema migrations of a PostgreSQL store)."""

from __future__ import annotations

import argparse
from typing import Any

from core.cmd.common import Parser, add_config, print_json


def cmd_migrate(args: argparse.Namespace) -> int:
    from core.config import load_config
    from core.store.configured import migrate

    cfg = load_config(args.config)
    applied, version = migrate(cfg.store, cfg)
    if args.json:
        print_json({"applied": applied, "version": version})
    elif applied:
        print(
            f"applied migrations {', '.join(map(str, applied))}: the store is at version {version}"
        )
    else:
        print(f"the store is at version {version}: nothing to apply")
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("store", help="the store: schema migrations, copies between back ends")
    store = p.add_subparsers(dest="store_command", required=True, parser_class=Parser)
    m = store.add_parser(
        "migrate", help="apply the PostgreSQL schema migrations this hanko needs (idempotent)"
    )
    add_config(m)
    m.add_argument("--json", action="store_true", help="print the result as JSON")
    m.set_defaults(func=cmd_migrate)
