"""`hanko tls`: client certificates from the internal TLS CA that `hanko init` made
(DIR/tls), for API clients when `[api] client_ca` requires them."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from core.cmd.common import Parser, add_config, config, print_json


def cmd_tls_client_cert(args: argparse.Namespace) -> int:
    import hashlib

    from cryptography.hazmat.primitives.serialization import Encoding

    from core.base.clock import SystemClock
    from core.base.errors import HankoError
    from core.ca import internal_tls

    cfg = config(args)
    directory = Path(cfg.base_dir) / "tls"
    if not (directory / internal_tls.CA_KEY_FILE).is_file():
        raise HankoError(f"no internal TLS CA in {directory} (hanko init makes one)")
    out = Path(args.out)
    for path in (out.with_suffix(".pem"), out.with_suffix(".key")):
        if path.exists():
            raise HankoError(f"{path} exists: choose another --out")
    cert = internal_tls.issue_client(directory, name=args.name, out=out, now=SystemClock().now())
    digest = hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()
    if args.json:
        print_json(
            {
                "certificate": str(out.with_suffix(".pem")),
                "key": str(out.with_suffix(".key")),
                "sha256": digest,
                "serial": f"{cert.serial_number:x}",
                "not_after": cert.not_valid_after_utc.isoformat(),
            }
        )
    else:
        print(f"{out.with_suffix('.pem')} and {out.with_suffix('.key')} (0600); SHA-256 {digest}")
    return 0


def cmd_tls_renew_server(args: argparse.Namespace) -> int:
    from core.base.clock import SystemClock
    from core.base.errors import HankoError
    from core.ca import internal_tls

    cfg = config(args)
    directory = Path(cfg.base_dir) / "tls"
    if not (directory / internal_tls.CA_KEY_FILE).is_file():
        raise HankoError(f"no internal TLS CA in {directory} (hanko init makes one)")
    cert = internal_tls.renew_server(directory, now=SystemClock().now())
    if args.json:
        print_json(
            {
                "certificate": str(directory / internal_tls.SERVER_FILE),
                "serial": f"{cert.serial_number:x}",
                "not_after": cert.not_valid_after_utc.isoformat(),
            }
        )
        return 0
    print(
        f"{directory / internal_tls.SERVER_FILE}: a new certificate until"
        f" {cert.not_valid_after_utc:%Y-%m-%d}; a running hanko serve takes it on SIGHUP"
        " (systemctl reload hanko)"
    )
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("tls", help="the API listener's internal TLS CA")
    t = p.add_subparsers(dest="tls_cmd", required=True, parser_class=Parser)
    c = t.add_parser("client-cert", help="issue a client certificate for mTLS")
    add_config(c)
    c.add_argument("--name", required=True, help="the client's name (its certificate's CN)")
    c.add_argument("--out", required=True, help="writes OUT.pem and OUT.key")
    c.add_argument("--json", action="store_true", help="print the result as JSON")
    c.set_defaults(func=cmd_tls_client_cert)
    r = t.add_parser("renew-server", help="a new certificate and key for the API listener")
    add_config(r)
    r.add_argument("--json", action="store_true", help="print the result as JSON")
    r.set_defaults(func=cmd_tls_renew_server)
