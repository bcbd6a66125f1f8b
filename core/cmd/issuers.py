"""`hanko ca issuer create | activate | retire | list` and `hanko ca revoke-issuer`:
the issuing CAs' lifecycle, with no configuration edited by hand."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from core.cmd.common import Parser, add_config, config, emit
from core.config.issuers import NAME_PATTERN


def _path(args: argparse.Namespace) -> Path:
    from core.config import config_path

    return config_path(args.config)


def _after(lines: list[str]) -> list[str]:
    return [
        *lines,
        "a running hanko serve applies it when told to reload (systemctl reload hanko, or"
        " SIGHUP), with no restart",
    ]


def cmd_create(args: argparse.Namespace) -> int:
    import re

    from core.base.clock import SystemClock
    from core.base.errors import ConfigError
    from core.ca.issuer_ceremony import create_issuer
    from core.ca.issuer_states import explicit, write_issuers
    from signer.algorithms import KeyType

    if not re.fullmatch(NAME_PATTERN, args.name):
        raise ConfigError(["--name: lower-case letters, digits and dashes, 1 to 32 of them"])
    cfg = config(args)
    if args.csr_out is not None:
        from core.ca.issuer_ceremony import request_issuer

        key_type = KeyType(args.key_type)
        request_issuer(
            cfg, name=args.name, key_type=key_type, clock=SystemClock(), out=args.csr_out
        )
        return emit(
            args,
            {"name": args.name, "state": "requested", "csr": str(args.csr_out)},
            [
                f"keys for issuer {args.name} made in the HSM; its CSR is {args.csr_out}",
                "next: have the offline root sign it, then hanko ca issuer import -c "
                f"{_path(args)} --name {args.name} --cert CERT.pem",
            ],
        )
    created = create_issuer(
        cfg, name=args.name, key_type=KeyType(args.key_type), clock=SystemClock()
    )
    write_issuers(_path(args), cfg, [*explicit(cfg), created.config])
    cert = created.certificate
    return emit(
        args,
        {
            "name": args.name,
            "state": "inactive",
            "serial": f"{cert.serial_number:x}",
            "subject": cert.subject.rfc4514_string(),
            "not_after": cert.not_valid_after_utc.isoformat(),
            "cert": created.config.cert,
            "key_label": created.config.key_label,
        },
        _after(
            [
                f"issuer {args.name} created (inactive): {cert.subject.rfc4514_string()}, "
                f"serial {cert.serial_number:x}, "
                f"valid until {cert.not_valid_after_utc.isoformat()}",
                f"next: hanko ca issuer activate -c {_path(args)} {args.name}",
            ]
        ),
    )


def cmd_import(args: argparse.Namespace) -> int:
    from core.base.clock import SystemClock
    from core.ca.issuer_ceremony import import_issuer
    from core.ca.issuer_states import explicit, write_issuers

    cfg = config(args)
    created = import_issuer(cfg, name=args.name, cert=args.cert, clock=SystemClock())
    write_issuers(_path(args), cfg, [*explicit(cfg), created.config])
    cert = created.certificate
    return emit(
        args,
        {"name": args.name, "state": "inactive", "serial": f"{cert.serial_number:x}"},
        _after(
            [
                f"issuer {args.name} imported (inactive), serial {cert.serial_number:x}",
                f"next: hanko ca issuer activate -c {_path(args)} {args.name}",
            ]
        ),
    )


def cmd_activate(args: argparse.Namespace) -> int:
    from core.base.clock import SystemClock
    from core.ca.issuer_states import activate

    cfg = config(args)
    profiles = [p for p in (args.profiles or "").split(",") if p] or None
    done = activate(_path(args), cfg, args.name, profiles, clock=SystemClock())
    return emit(
        args,
        {"name": done.name, "state": "active", "profiles": done.profiles},
        _after(
            [
                f"issuer {done.name} is active for "
                + ("every profile" if done.profiles == ["*"] else ", ".join(done.profiles))
            ]
        ),
    )


def cmd_retire(args: argparse.Namespace) -> int:
    from core.base.clock import SystemClock
    from core.ca.issuer_states import retire

    cfg = config(args)
    done = retire(_path(args), cfg, args.name, clock=SystemClock(), force=args.force)
    return emit(
        args,
        {"name": done.name, "state": "retired", "retired_at": str(done.retired_at)},
        _after(
            [
                f"issuer {done.name} is retired: it issues nothing more and signs OCSP "
                "and CRLs until its last certificate has expired (hanko ca issuer list)"
            ]
        ),
    )


def cmd_list(args: argparse.Namespace) -> int:
    from core.base.clock import SystemClock
    from core.ca.issuer_states import listing

    rows = listing(config(args), clock=SystemClock())
    lines = [
        f"{r['name']}: {r['state']}, {r['key_type']}, profiles "
        f"{','.join(r['profiles']) or '-'}, {r['certificates_valid']} certificates valid"
        + (f", status signed until {r['status_until']}" if r["status_until"] else "")
        for r in rows
    ]
    return emit(args, rows, lines)


def cmd_revoke_issuer(args: argparse.Namespace) -> int:
    from core.base.clock import SystemClock
    from core.ca.issuer_states import revoke_issuer
    from core.ca.root_crl import MAX_VALIDITY, publish_root_crl
    from core.config import load_config

    cfg = config(args)
    clock = SystemClock()
    done, fresh = revoke_issuer(_path(args), cfg, args.name, args.reason, clock=clock)
    # The root CRL is re-signed now, with the new entry, at its usual validity.
    crl = publish_root_crl(load_config(_path(args)), clock=clock, validity=MAX_VALIDITY)
    return emit(
        args,
        {
            "name": done.name,
            "state": "revoked",
            "already_revoked": not fresh,
            "root_crl": str(crl.path),
            "root_crl_number": crl.number,
        },
        [
            f"issuer {done.name} is on the root CRL (number {crl.number}, {crl.path})"
            + ("" if fresh else "; it was revoked before")
        ],
    )


def register(ca: Any) -> None:
    """Under `hanko ca`."""
    p = ca.add_parser("issuer", help="the issuing CAs: create, activate, retire, list")
    sub = p.add_subparsers(dest="issuer_command", required=True, parser_class=Parser)

    c = sub.add_parser(
        "create",
        help="a new issuing CA: keys made in the HSM, certificate signed by the root (inactive)",
    )
    add_config(c)
    c.add_argument("--name", required=True, help="its name (URLs and files use it), e.g. e2")
    c.add_argument(
        "--key-type",
        default="ecdsa-p256",
        choices=["ecdsa-p256", "ecdsa-p384", "rsa-2048", "rsa-3072"],
    )
    c.add_argument(
        "--csr-out",
        type=Path,
        default=None,
        metavar="FILE",
        help="for a root kept offline: write a CSR here instead (then hanko ca issuer import)",
    )
    c.add_argument("--json", action="store_true", help="print the result as JSON")
    c.set_defaults(func=cmd_create)

    c = sub.add_parser(
        "import", help="the certificate an offline root signed for a --csr-out CSR (inactive)"
    )
    add_config(c)
    c.add_argument("--name", required=True)
    c.add_argument("--cert", type=Path, required=True, help="the issuing CA certificate, PEM")
    c.add_argument("--json", action="store_true", help="print the result as JSON")
    c.set_defaults(func=cmd_import)

    c = sub.add_parser("activate", help="let an issuer sign certificates of some profiles")
    add_config(c)
    c.add_argument("name")
    c.add_argument("--profiles", default=None, help="comma-separated (default: every profile)")
    c.add_argument("--json", action="store_true", help="print the result as JSON")
    c.set_defaults(func=cmd_activate)

    c = sub.add_parser(
        "retire", help="stop an issuer issuing; it signs status until its certificates expire"
    )
    add_config(c)
    c.add_argument("name")
    c.add_argument(
        "--force", action="store_true", help="even if a profile is left with no active issuer"
    )
    c.add_argument("--json", action="store_true", help="print the result as JSON")
    c.set_defaults(func=cmd_retire)

    c = sub.add_parser("list", help="every issuer: state, key type, profiles, valid certificates")
    add_config(c)
    c.add_argument("--json", action="store_true", help="print the result as JSON")
    c.set_defaults(func=cmd_list)

    c = ca.add_parser(
        "revoke-issuer", help="put an issuing CA on the root CRL and re-sign the root CRL"
    )
    add_config(c)
    c.add_argument("name")
    c.add_argument(
        "--reason",
        required=True,
        choices=[
            "keyCompromise",
            "cACompromise",
            "affiliationChanged",
            "superseded",
            "cessationOfOperation",
        ],
    )
    c.add_argument("--json", action="store_true", help="print the result as JSON")
    c.set_defaults(func=cmd_revoke_issuer)
