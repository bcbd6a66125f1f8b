"""`hanko backup` and `hanko restore`: the store to one file and back
(core/store/backup.py says what the file holds)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from core.cmd.common import add_config, config, print_json


def cmd_backup(args: argparse.Namespace) -> int:
    from core.base.clock import SystemClock
    from core.store import LmdbStore
    from core.store.backup import backup
    from core.store.configured import open_store

    cfg = config(args)
    refuse_postgresql(cfg, "backup")
    # A read-only open: a backup runs beside hanko serve and never takes the writer.
    store = open_store(cfg, readonly=True)
    assert isinstance(store, LmdbStore)  # noqa: S101 - refused above otherwise
    try:
        manifest = backup(store, args.out, now=SystemClock().now())
    finally:
        store.close()
    if args.json:
        print_json({"file": str(args.out), **manifest})
    else:
        print(
            f"{args.out}: {manifest['entries'].get('certs', 0)} certificates,"
            f" {manifest['data_bytes']} bytes, sha256 {manifest['data_sha256']}"
        )
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from core.store.backup import restore

    cfg = config(args)
    refuse_postgresql(cfg, "restore")
    manifest = restore(args.source, cfg.path(cfg.store.path), map_size=cfg.store.map_size.bytes)
    if args.json:
        print_json({"store": str(cfg.path(cfg.store.path)), **manifest})
    else:
        print(
            f"restored {cfg.path(cfg.store.path)} from {args.source} (taken"
            f" {manifest['created_at']}, {manifest['entries'].get('certs', 0)} certificates);"
            " next: hanko licenses check"
        )
    return 0


def refuse_postgresql(cfg: Any, command: str) -> None:
    """These file backups are LMDB's; a database is backed up by its own tools."""
    from core.base.errors import ConfigError

    if cfg.store.backend == "postgresql":
        raise ConfigError(
            [
                f"hanko {command} copies an LMDB store; on PostgreSQL use pg_basebackup or"
                " pg_dump, or `hanko store copy` to or from an LMDB store"
            ]
        )


def register(sub: Any) -> None:
    p = sub.add_parser(
        "backup", help="a consistent, compacted copy of the store, taken while serving"
    )
    add_config(p)
    p.add_argument("--out", type=Path, required=True, help="the backup file to write (0600)")
    p.add_argument("--json", action="store_true", help="print the manifest as JSON")
    p.set_defaults(func=cmd_backup)

    p = sub.add_parser("restore", help="a backup into a new, empty store (hanko serve stopped)")
    add_config(p)
    p.add_argument("--from", dest="source", type=Path, required=True, help="the backup file")
    p.add_argument("--json", action="store_true", help="print the manifest as JSON")
    p.set_defaults(func=cmd_restore)
