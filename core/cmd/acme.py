"""`hanko acme eab`: External Account Binding credentials on the command line (the API's
/v1/acme/eab does the same). The HMAC key is printed once, at creation."""

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


def _master(cfg: Any) -> bytes:
    from core.base.errors import ConfigError
    from core.cmd.wiring import eab_master

    master = eab_master(cfg)
    if master is None:
        raise ConfigError(["acme.eab_secret: not set; ACME needs it (hanko init writes one)"])
    return master


def cmd_eab_create(args: argparse.Namespace) -> int:
    from core.acme import eab
    from core.base.clock import SystemClock, to_epoch

    cfg = config(args)
    # "ov,shortlived": the first is what an order naming no profile gets.
    named = [p.strip() for p in args.profile.split(",") if p.strip()]
    body = eab.EabIn(
        account=args.account,
        organization=args.organization,
        profile=named[0] if named else "",
        profiles=named[1:],
        license=args.license,
    )
    op = eab.create(
        body,
        master=_master(cfg),
        profiles=frozenset(cfg.issuance.profiles),
        directory=f"https://{cfg.api.listen}/acme/directory",
        now=to_epoch(SystemClock().now()),
        actor="cli",
    )
    created = write(cfg, op)
    if args.json:
        print_struct(created)
    else:
        print(f"EAB key id {created.kid} for {body.organization} ({body.profile}); shown once:")
        print(f"  --eab-kid {created.kid} --eab-hmac-key {created.hmac_key}")
        print(f"  --server {created.directory}")
    return 0


def cmd_eab_list(args: argparse.Namespace) -> int:
    import msgspec

    from core.acme import eab

    cfg = config(args)
    with reading(cfg) as txn:
        out = [eab.eab_out(r) for r in txn.iter_eab()]
    if args.json:
        print_json(msgspec.to_builtins(out))
        return 0
    for e in out:
        state = (
            "revoked"
            if e.revoked_at
            else (f"bound to {e.acme_account}" if e.acme_account else "unbound")
        )
        print(f"{e.kid}  {e.account}/{e.organization}  {','.join(e.profiles)}  {state}")
    return 0


def cmd_eab_revoke(args: argparse.Namespace) -> int:
    from core.acme import eab
    from core.base.clock import SystemClock, to_epoch

    cfg = config(args)
    out = write(cfg, eab.revoke(args.kid, now=to_epoch(SystemClock().now()), actor="cli"))
    return emit(
        args, out, [f"EAB credential {out.kid} revoked: its ACME account is refused from now on"]
    )


def register(sub: Any) -> None:
    p = sub.add_parser("acme", help="ACME: External Account Binding credentials")
    a = p.add_subparsers(dest="acme_cmd", required=True, parser_class=Parser)
    e = a.add_parser("eab", help="EAB credentials (one ACME account each)")
    eab = e.add_subparsers(dest="eab_cmd", required=True, parser_class=Parser)
    c = eab.add_parser("create", help="a credential for an organization; its key is printed once")
    add_config(c)
    c.add_argument("--account", required=True)
    c.add_argument("--organization", required=True)
    c.add_argument(
        "--profile",
        required=True,
        help="the profiles its orders may ask for, e.g. ov or ov,shortlived (the first is"
        " the default)",
    )
    c.add_argument("--license", help="the licence that pays (default: the account's)")
    c.add_argument("--json", action="store_true", help='print {"kid", "hmac_key", "directory"}')
    c.set_defaults(func=cmd_eab_create)
    ls = eab.add_parser("list", help="every credential (never a key)")
    add_config(ls)
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_eab_list)
    r = eab.add_parser("revoke", help="refuse a credential and its ACME account")
    add_config(r)
    r.add_argument("kid")
    r.add_argument("--json", action="store_true", help="print the result as JSON")
    r.set_defaults(func=cmd_eab_revoke)
