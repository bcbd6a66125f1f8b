"""`hanko renewals`: renewals scheduled for when their issue window opens
(`renewal_issue_window`): list them, cancel one (its licence hold given back)."""

from __future__ import annotations

import argparse
from typing import Any

from core.cmd.common import (
    Parser,
    add_config,
    config,
    emit,
    print_json,
    reading,
)


def cmd_list(args: argparse.Namespace) -> int:
    import msgspec

    from core.issuance.scheduling import view

    cfg = config(args)
    with reading(cfg) as txn:
        found = [
            view(r)
            for r in txn.iter_renewals(account=args.account)
            if args.status is None or r.status == args.status
        ]
    found.sort(key=lambda v: (v.issue_at, v.id))
    if args.json:
        print_json({"renewals": msgspec.to_builtins(found)})
        return 0
    for v in found:
        done = f" -> {v.serial}" if v.serial else (f": {v.error}" if v.error else "")
        print(
            f"{v.id}\t{v.status}\t{v.issue_at.isoformat()}\t{v.organization}\t"
            f"renews {v.renewal_of}{done}"
        )
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    from core.cmd.common import run_with_engine
    from core.issuance.scheduling import find, view

    cfg = config(args)

    async def job(engine: Any) -> Any:
        with engine.store.read() as txn:
            rec = find(txn, args.id, None)
        return await engine.scheduling.settle(rec, "cancelled", actor="cli")

    done = view(run_with_engine(cfg, job))
    return emit(args, done, [f"renewal {done.id} cancelled; what it held was given back"])


def register(sub: Any) -> None:
    p = sub.add_parser("renewals", help="renewals scheduled for their issue window")
    group = p.add_subparsers(dest="renewals_cmd", required=True, parser_class=Parser)
    a = group.add_parser("list", help="scheduled renewals and what became of them")
    add_config(a)
    a.add_argument("--account", default=None, help="only this account's")
    a.add_argument("--status", choices=["scheduled", "issued", "cancelled", "failed"])
    a.add_argument("--json", action="store_true", help="print JSON")
    a.set_defaults(func=cmd_list)
    a = group.add_parser("cancel", help="cancel a scheduled renewal (its hold given back)")
    add_config(a)
    a.add_argument("id", help="the renewal's id (rnw_...)")
    a.add_argument("--json", action="store_true", help="print JSON")
    a.set_defaults(func=cmd_cancel)
