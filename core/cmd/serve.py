"""`hanko serve`: the command. The service it runs (core/cmd/service.py) is imported
only when it runs: every other command starts without it (half a second of imports)."""

from __future__ import annotations

import argparse
from typing import Any

from core.cmd.common import add_config


def cmd_serve(args: argparse.Namespace) -> int:
    from core.cmd.service import serve
    from core.config import config_path, load_config

    # load_config refuses what must not run: a routable listener without TLS, a key
    # others can read.
    path = config_path(args.config)
    serve(load_config(path), path)
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("serve", help="run the service in the foreground")
    add_config(p)
    p.set_defaults(func=cmd_serve)
