"""`hanko licenses webhook` (an account's webhook: set, which rotates its secret, and
remove) and `hanko notify status` (the outbox: pending, delivered, given up)."""

from __future__ import annotations

import argparse
from typing import Any

from core.cmd.common import (
    Parser,
    add_config,
    config,
    emit,
    print_json,
    print_struct,
    reading,
    write,
)


def cmd_webhook_set(args: argparse.Namespace) -> int:
    from core.base.clock import SystemClock, to_epoch
    from core.cmd.wiring import require_notify_master
    from core.notify.webhooks import set_webhook

    cfg = config(args)
    op = set_webhook(
        args.account,
        args.url,
        master=require_notify_master(cfg),
        allow_private=cfg.notify.allow_private,
        now=to_epoch(SystemClock().now()),
        actor="cli",
    )
    out = write(cfg, op)
    if args.json:
        print_struct(out)
    else:
        print(f"webhook of {out.account}: {out.url}")
        print(f"signing secret (shown once; receivers check Hanko-Signature with it): {out.secret}")
    return 0


def cmd_webhook_remove(args: argparse.Namespace) -> int:
    from core.base.clock import SystemClock

    cfg = config(args)
    at_us = SystemClock().now_us()
    write(cfg, lambda t: t.remove_webhook(args.account, at_us=at_us, actor="cli"))
    return emit(
        args,
        {"account": args.account, "removed": True},
        [f"webhook of {args.account} removed: its pending events are given up"],
    )


def cmd_notify_status(args: argparse.Namespace) -> int:
    import msgspec

    from core.base.clock import from_epoch

    cfg = config(args)
    with reading(cfg) as txn:
        counts = txn.outbox_counts()
        failing = [e for e in txn.iter_events() if e.pending and e.attempts][-20:]
    if args.json:
        print_json(
            {
                **msgspec.to_builtins(counts),
                "failing": [
                    {
                        "seq": e.seq,
                        "account": e.account,
                        "type": e.type,
                        "attempts": e.attempts,
                        "last_error": e.last_error,
                        "next_at": from_epoch(e.next_at).isoformat(),
                    }
                    for e in failing
                ],
            }
        )
        return 0
    oldest = from_epoch(counts.oldest_pending_at).isoformat() if counts.oldest_pending_at else "-"
    print(
        f"pending {counts.pending} (oldest {oldest}), delivered {counts.delivered},"
        f" given up {counts.given_up}"
    )
    for e in failing:
        print(f"  {e.type} to {e.account}: {e.attempts} attempts, {e.last_error}")
    return 0


def register_webhook(lic: Any) -> None:
    """Under `hanko licenses`: the account's webhook."""
    p = lic.add_parser("webhook", help="the account's webhook: pushed events, signed")
    hook = p.add_subparsers(dest="webhook_cmd", required=True, parser_class=Parser)
    s = hook.add_parser("set", help="set (or replace) the URL; a new signing secret, shown once")
    add_config(s)
    s.add_argument("account", help="account id")
    s.add_argument("--url", required=True, help="http(s) URL events are POSTed to")
    s.add_argument("--json", action="store_true", help="print the result as JSON")
    s.set_defaults(func=cmd_webhook_set)
    r = hook.add_parser("remove", help="stop pushing events to the account")
    add_config(r)
    r.add_argument("account", help="account id")
    r.add_argument("--json", action="store_true", help="print the result as JSON")
    r.set_defaults(func=cmd_webhook_remove)


def register(sub: Any) -> None:
    p = sub.add_parser("notify", help="pushed events: the outbox")
    n = p.add_subparsers(dest="notify_cmd", required=True, parser_class=Parser)
    s = n.add_parser("status", help="pending, delivered and given-up events; the failing ones")
    add_config(s)
    s.add_argument("--json", action="store_true", help="print the result as JSON")
    s.set_defaults(func=cmd_notify_status)
