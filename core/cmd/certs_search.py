"""`hanko certs search`: the certificates an incident or an audit is about, on either
store back end (core/store/search.py)."""

from __future__ import annotations

import argparse
from typing import Any

from core.cmd.common import Parser, add_config, config, print_json
from core.config import Config

DEFAULT_LIMIT = 1000


def issuer_ids(cfg: Config) -> dict[str, bytes]:
    """Each configured issuer's key identifier, by its name."""
    from cryptography import x509

    from core.ca.issuer import key_id

    out = {}
    for issuer in cfg.issuers():
        path = cfg.path(issuer.config.cert)
        if path.exists():
            out[issuer.name] = key_id(x509.load_pem_x509_certificate(path.read_bytes()))
    return out


def query_of(args: argparse.Namespace, cfg: Config) -> Any:
    from core.store.search import CertQuery, parse_time, resolve_issuer

    return CertQuery(
        name=args.name,
        organization=args.organization,
        account=args.account,
        profile=args.profile,
        issuer=None if args.issuer is None else resolve_issuer(args.issuer, issuer_ids(cfg)),
        issued_after=None
        if args.issued_after is None
        else parse_time(args.issued_after, "--issued-after"),
        issued_before=None
        if args.issued_before is None
        else parse_time(args.issued_before, "--issued-before"),
        status=args.status,
        key_type=args.key_type,
        limit=args.limit,
        after=args.after,
    ).checked()


def cmd_search(args: argparse.Namespace) -> int:
    import time

    from core.store.configured import open_store
    from core.store.search import page_json

    cfg = config(args)
    query = query_of(args, cfg)
    with open_store(cfg, readonly=True) as store:
        page = store.search_certs(query, int(time.time()))
    shown = page_json(page)
    if args.json:
        print_json(shown)
        return 0
    certificates: list[dict[str, Any]] = shown["certificates"]  # type: ignore[assignment]
    for c in certificates:
        print(
            f"{c['serial']} {c['status']:<7} {c['not_before']} {c['not_after']}"
            f" {c['profile']} {c['organization']} {c['key_type'] or '-'} {','.join(c['names'])}"
        )
    if page.next is not None:
        print(f"# more: --after {page.next}")
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("certs", help="certificates in the store: search")
    certs = p.add_subparsers(dest="certs_command", required=True, parser_class=Parser)
    s = certs.add_parser(
        "search",
        help="find certificates by name, organization, account, profile, issuer, issuance"
        " date, status or key type",
    )
    add_config(s)
    s.add_argument("--name", help="a DNS name, or a pattern where * is any run (*.example.co.jp)")
    s.add_argument("--organization", help="organization id")
    s.add_argument("--account", help="account id (the certificates it holds)")
    s.add_argument("--profile", help="profile name")
    s.add_argument("--issuer", help="issuer name from the configuration, or its key id in hex")
    s.add_argument("--issued-after", help="notBefore at or after this (ISO 8601; UTC by default)")
    s.add_argument("--issued-before", help="notBefore before this (ISO 8601; UTC by default)")
    s.add_argument("--status", choices=("good", "revoked", "expired"))
    s.add_argument("--key-type", help="ecdsa-p256, ecdsa-p384, rsa-2048, rsa-3072, ...")
    s.add_argument(
        "--limit",
        type=int,
        default=DEFAULT_LIMIT,
        help=f"at most this many (default {DEFAULT_LIMIT})",
    )
    s.add_argument("--after", metavar="SERIAL", help="continue after this serial (hex)")
    s.add_argument("--json", action="store_true", help="print the result as JSON")
    s.set_defaults(func=cmd_search)
