"""`hanko keys`: API keys on the command line (the admin API's /v1/admin/keys does the
same over HTTP). The secret is printed once, at creation."""

from __future__ import annotations

import argparse
from pathlib import Path
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


def cmd_keys_create(args: argparse.Namespace) -> int:
    import hashlib

    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    from core.access import keys
    from core.base.clock import SystemClock, to_epoch
    from core.base.errors import HankoError

    cfg = config(args)
    fingerprint = None
    if args.client_cert is not None:
        try:
            cert = x509.load_pem_x509_certificate(Path(args.client_cert).read_bytes())
        except (OSError, ValueError) as exc:
            raise HankoError(
                f"--client-cert {args.client_cert}: not a PEM certificate ({exc})"
            ) from None
        fingerprint = hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()
    body = keys.KeyIn(
        role=args.role,
        accounts=args.account or [],
        all_accounts=args.all_accounts,
        expires_in=args.expires,
        rate=args.rate,
        client_cert_sha256=fingerprint,
        label=args.label or "",
    )
    op = keys.create(body, now=to_epoch(SystemClock().now()), actor="cli")
    created = write(cfg, op)
    if args.json:
        print_struct(created)
    else:
        print(f"API key {created.id} ({created.key.role}); its secret, shown only now:")
        print(created.secret)
    return 0


def cmd_keys_list(args: argparse.Namespace) -> int:
    import msgspec

    from core.access import keys

    cfg = config(args)
    with reading(cfg) as txn:
        out = [keys.key_out(rec) for rec in txn.iter_api_keys()]
    if args.json:
        print_json(msgspec.to_builtins(out))
        return 0
    for k in out:
        scope = "every account" if k.accounts is None else ",".join(k.accounts)
        state = (
            f"revoked {k.revoked_at:%Y-%m-%d}"
            if k.revoked_at
            else (f"expires {k.expires_at:%Y-%m-%d}" if k.expires_at else "no expiry")
        )
        rate = f", {k.rate:g}/s" if k.rate else ""
        print(f"{k.id}  {k.role:<7} {scope}  ({state}{rate}) {k.label}".rstrip())
    return 0


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    from core.access import keys
    from core.base.clock import SystemClock, to_epoch

    cfg = config(args)
    out = write(cfg, keys.revoke(args.id, now=to_epoch(SystemClock().now()), actor="cli"))
    return emit(
        args, out, [f"API key {out.id} revoked: it is refused from now on, on open connections too"]
    )


def register(sub: Any) -> None:
    p = sub.add_parser("keys", help="API keys of portals, resellers and operators")
    k = p.add_subparsers(dest="keys_cmd", required=True, parser_class=Parser)
    c = k.add_parser("create", help="make an API key; its secret is printed once")
    add_config(c)
    c.add_argument("--role", choices=["issuer", "reader", "admin"], required=True)
    c.add_argument("--account", action="append", help="an account it acts for (repeatable)")
    c.add_argument("--all-accounts", action="store_true", help="every account (admin only)")
    c.add_argument("--expires", help="lifetime, e.g. 90d (default: no expiry)")
    c.add_argument("--rate", type=float, help="requests per second at most (429 beyond)")
    c.add_argument("--client-cert", help="PEM certificate the key is bound to (mTLS only)")
    c.add_argument("--label", help="a note for people: who holds it")
    c.add_argument("--json", action="store_true", help='print {"id": ..., "secret": ...}')
    c.set_defaults(func=cmd_keys_create)

    ls = k.add_parser("list", help="every API key (never a secret)")
    add_config(ls)
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_keys_list)

    r = k.add_parser("revoke", help="refuse an API key from now on")
    add_config(r)
    r.add_argument("id")
    r.add_argument("--json", action="store_true")
    r.set_defaults(func=cmd_keys_revoke)
