"""`hanko init`, `hanko check-config` and `hanko ca`: the CA itself and its configuration."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from core.base.errors import ConfigError
from core.cmd.common import Parser, add_config, config, emit, print_json


def cmd_init(args: argparse.Namespace) -> int:
    from core.base.clock import SystemClock
    from core.ca.bootstrap import PgTarget, init_ca
    from signer.algorithms import KeyType

    store = None
    if args.store is not None:
        store = PgTarget(
            dsn=args.store,
            admin_dsn=args.store_admin or "",
            password_file=args.store_password_file,
            admin_password_file=args.store_admin_password_file,
        )
    elif args.store_admin or args.store_password_file or args.store_admin_password_file:
        raise ConfigError(["--store-admin and the password files go with --store"])
    result = init_ca(
        args.directory,
        key_type=KeyType(args.key_type),
        clock=SystemClock(),
        base_url=args.base_url,
        store=store,
    )
    if args.json:
        print_json(
            {
                "directory": str(result.directory),
                "config": str(result.config),
                "root_serial": f"{result.root.serial_number:x}",
                "issuing_serial": f"{result.issuing.serial_number:x}",
                "ocsp_responder_serial": f"{result.ocsp_responder.serial_number:x}",
            }
        )
    else:
        print(f"created a development CA in {result.directory}")
        print(f"configuration: {result.config}")
        print(f"next: hanko check-config -c {result.config}")
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    from core.config import check_config, config_path

    path = config_path(args.config)
    cfg, problems = check_config(path)
    if cfg is not None:
        from core.base.clock import SystemClock
        from core.ct.checks import problems as ct_problems

        # The logs against the SCT policy: a layer above the configuration's own checks.
        problems = ct_problems(cfg, now=SystemClock().now())
    if problems:
        raise ConfigError(problems)
    assert cfg is not None  # noqa: S101 - no problems: it loaded
    notes = []
    if cfg.ca.issuer_cert:
        notes.append(
            "note: [ca] issuer_cert is the one-issuer form, read as one issuer named"
            ' "issuing" with every profile; the form for several is [[ca.issuers]]'
            " (docs/issuers.md), and `hanko ca issuer create` rewrites this file into it,"
            " keeping the URLs its certificates carry"
        )
    return emit(args, {"config": str(path), "ok": True, "notes": notes}, [f"{path}: ok", *notes])


def cmd_ca_renew_responder(args: argparse.Namespace) -> int:
    from core.base.clock import SystemClock
    from core.ca.responder_cert import renew_responder

    cfg = config(args)
    done = renew_responder(cfg, clock=SystemClock(), issuer=args.issuer)
    cert = done.certificate
    if args.json:
        print_json(
            {
                "serial": f"{cert.serial_number:x}",
                "not_after": cert.not_valid_after_utc.isoformat(),
                "previous_kept_as": str(done.kept_as),
            }
        )
        return 0
    print(
        f"OCSP responder certificate renewed: serial {cert.serial_number:x}, valid until "
        f"{cert.not_valid_after_utc.isoformat()} (the previous one is kept as {done.kept_as})"
    )
    return 0


def cmd_ca_root_crl(args: argparse.Namespace) -> int:
    import datetime as dt

    from core.base.clock import SystemClock
    from core.ca.root_crl import publish_root_crl

    cfg = config(args)
    done = publish_root_crl(cfg, clock=SystemClock(), validity=dt.timedelta(days=args.days))
    if args.json:
        print_json(
            {
                "path": str(done.path),
                "crl_number": done.number,
                "this_update": done.this_update.isoformat(),
                "next_update": done.next_update.isoformat(),
            }
        )
    else:
        print(
            f"root CRL {done.number} written to {done.path}, valid until"
            f" {done.next_update.isoformat()}"
        )
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser(
        "init",
        help="create a development CA (SoftHSM token, CA certs, an LMDB or PostgreSQL store)",
    )
    p.add_argument("directory", type=Path, help="folder to create; must not exist or be empty")
    p.add_argument(
        "--key-type",
        default="ecdsa-p256",
        choices=["ecdsa-p256", "ecdsa-p384", "rsa-2048", "rsa-3072"],
        help="key type of the root, issuing and OCSP keys (default: ecdsa-p256)",
    )
    p.add_argument(
        "--base-url",
        default=None,
        help="public http:// base URL written into AIA and CRL distribution points",
    )
    p.add_argument(
        "--store",
        default=None,
        metavar="DSN",
        help="a PostgreSQL store (postgresql://USER@HOST:PORT/DBNAME, no password in it)"
        " instead of LMDB under DIR; its password from --store-password-file or"
        " $HANKO_STORE_PASSWORD",
    )
    p.add_argument("--store-password-file", type=Path, default=None, metavar="FILE")
    p.add_argument(
        "--store-admin",
        default=None,
        metavar="DSN",
        help="the role that owns the tables and runs migrations (default: --store's);"
        " its password from --store-admin-password-file or $HANKO_STORE_ADMIN_PASSWORD",
    )
    p.add_argument("--store-admin-password-file", type=Path, default=None, metavar="FILE")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("check-config", help="validate a configuration file")
    add_config(p)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_check_config)

    p = sub.add_parser("ca", help="the CA's own certificates")
    ca = p.add_subparsers(dest="ca_command", required=True, parser_class=Parser)
    c = ca.add_parser(
        "renew-responder",
        help="a new certificate for the OCSP responder's key; a running service adopts it",
    )
    add_config(c)
    c.add_argument("--issuer", default=None, help="whose responder (default: the first issuer)")
    c.add_argument("--json", action="store_true", help="print the result as JSON")
    c.set_defaults(func=cmd_ca_renew_responder)
    c = ca.add_parser(
        "root-crl",
        help="sign the root CA's CRL with the root key (run it from a timer, e.g. monthly)",
    )
    add_config(c)
    c.add_argument("--days", type=int, default=365, help="validity in days (at most 365)")
    c.add_argument("--json", action="store_true", help="print the result as JSON")
    c.set_defaults(func=cmd_ca_root_crl)
    from core.cmd import issuers

    issuers.register(ca)
