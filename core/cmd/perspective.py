"""`hanko perspective init|serve`: remote perspectives for multi-perspective issuance
corroboration (BR 3.2.2.9). `init`, run where the CA's internal TLS CA is, writes a
perspective's directory (its file and its listener's certificate) and, once, the
primary's client certificate; the directory is copied to the perspective's host, which
runs `serve`. A perspective holds nothing of the CA but the internal CA's certificate."""

from __future__ import annotations

import argparse
import logging
import shutil
import signal
from pathlib import Path
from typing import Any

from core.cmd.common import Parser, add_config, config, print_json

log = logging.getLogger("hanko.perspective")
FILE = "perspective.toml"
PRIMARY_CLIENT = "hanko-mpic-primary"


def _toml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _perspective_file(args: argparse.Namespace) -> str:
    lines = [
        "# A remote perspective (hanko perspective serve -c THIS_FILE): no store, no HSM,",
        "# no secret of the CA; checks from here through its own resolver.",
        "[perspective]",
        f"code = {_toml_string(args.code)}",
        f"rir = {_toml_string(args.rir)}",
        f"listen = {_toml_string(args.listen)}",
        'tls_cert = "tls/perspective.pem"',
        'tls_key = "tls/perspective.key"',
        'client_ca = "tls/internal-ca.pem"',
    ]
    if args.allow_private_targets:
        lines.append("allow_private_targets = true  # a laboratory's loopback targets")
    lines += [
        "",
        "[dns]",
        "# This perspective's own validating resolver: shared with no other perspective.",
        f"resolver = {_toml_string(args.resolver)}",
        "",
    ]
    return "\n".join(lines)


def cmd_perspective_init(args: argparse.Namespace) -> int:
    from core.base.clock import SystemClock
    from core.base.errors import HankoError
    from core.ca import internal_tls
    from core.config import parse_listen
    from core.config.load import load_perspective_config
    from core.config.mpic import CODE, RIRS

    cfg = config(args)
    tls_dir = Path(cfg.base_dir) / "tls"
    if not (tls_dir / internal_tls.CA_KEY_FILE).is_file():
        raise HankoError(f"no internal TLS CA in {tls_dir} (hanko init makes one)")
    try:
        host, port = parse_listen(args.listen)
        parse_listen(args.resolver)
    except ValueError as exc:
        raise HankoError(f"--listen/--resolver: {exc}") from None
    # Refused before anything is written: a bad argument leaves no directory behind.
    if not CODE.match(args.code):
        raise HankoError(f"--code: lower-case letters, digits and '-' ({args.code!r})")
    if args.rir not in RIRS:
        raise HankoError(f"--rir: one of {', '.join(RIRS)} ({args.rir!r})")
    target = Path(args.dir)
    if target.exists() and any(target.iterdir()):
        raise HankoError(f"{target} exists and is not empty: choose another directory")
    client_cert = cfg.path(cfg.mpic.client_cert)
    client_key = cfg.path(cfg.mpic.client_key)
    if client_key != client_cert.with_suffix(".key"):
        raise HankoError("mpic.client_key: must be mpic.client_cert with .key for its suffix")
    now = SystemClock().now()
    target.mkdir(mode=0o700, parents=True, exist_ok=True)
    (target / "tls").mkdir(mode=0o700)
    names = tuple(dict.fromkeys([host, *args.name]))
    internal_tls.issue_server(tls_dir, names=names, out=target / "tls" / "perspective", now=now)
    shutil.copyfile(tls_dir / internal_tls.CA_FILE, target / "tls" / internal_tls.CA_FILE)
    made_client = not client_cert.exists()
    if made_client:
        internal_tls.issue_client(
            tls_dir, name=PRIMARY_CLIENT, out=client_cert.with_suffix(""), now=now
        )
    path = target / FILE
    path.write_text(_perspective_file(args))
    path.chmod(0o600)
    load_perspective_config(path)  # what serve would refuse is refused now
    shown = f"[{host}]" if ":" in host else host
    entry = (
        f"{{ url = {_toml_string(f'https://{shown}:{port}')}, code = {_toml_string(args.code)},"
        f" rir = {_toml_string(args.rir)} }}"
    )
    if args.json:
        print_json(
            {
                "config": str(path),
                "perspective": entry,
                "client_certificate": str(client_cert) if made_client else None,
            }
        )
    else:
        print(f"{path}: perspective {args.code} ({args.rir}) on https://{shown}:{port}")
        if made_client:
            print(f"{client_cert} and its key (0600): the primary's client certificate")
        print(f"add to [mpic] perspectives in {args.config}: {entry}")
    return 0


async def _serve(cfg: Any) -> None:
    import trio

    from core.api.server import ApiListener, ListenerSettings, PeerCertificates
    from core.base.clock import SystemClock
    from core.config import parse_listen
    from core.dns.resolver import DnsSettings, Resolver
    from core.perspective.checks import Checker
    from core.perspective.service import build_app

    p, d = cfg.perspective, cfg.dns
    host, port = parse_listen(p.listen)
    settings = ListenerSettings(
        host=host,
        port=port,
        tls_cert=str(cfg.path(p.tls_cert)),
        tls_key=str(cfg.path(p.tls_key)),
        client_ca=str(cfg.path(p.client_ca)),
        max_connections=p.max_connections,
        max_connections_per_client=p.max_connections_per_client,
        header_timeout=p.header_timeout.seconds,
        body_timeout=p.body_timeout.seconds,
        max_buffered=max(16 << 20, 4 * p.max_body.bytes),
        setting="perspective.listen",
    )
    listener = ApiListener(settings, peers=PeerCertificates())
    resolver = Resolver(
        DnsSettings(
            server=d.resolver, timeout=min(d.timeout.seconds, p.timeout.seconds), retries=d.retries
        )
    )
    checker = Checker(
        resolver,
        clock=SystemClock(),
        timeout=p.timeout.seconds,
        concurrency=p.max_concurrent_checks,
        allow_private=p.allow_private_targets,
    )
    app = build_app(checker, code=p.code, rir=p.rir, max_body=p.max_body.bytes, listener=listener)
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            [where] = await nursery.start(listener.run, app)
            print(
                f"hanko: perspective {p.code} ({p.rir}) serving on {where}, resolver"
                f" {d.resolver} (Ctrl-C to stop)",
                flush=True,
            )
            async for signum in signals:
                log.info("perspective: %s received, stopping", signal.Signals(signum).name)
                await listener.drain(5.0)
                nursery.cancel_scope.cancel()
                break


def cmd_perspective_serve(args: argparse.Namespace) -> int:
    import trio

    from core.base import logs
    from core.config.load import config_path, load_perspective_config

    cfg = load_perspective_config(config_path(args.config))
    logs.configure(cfg.log.format, cfg.log.level)
    # Every fetch a check makes is in its result; httpx's own line per request is noise.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    trio.run(_serve, cfg)
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser(
        "perspective",
        help="remote perspectives that corroborate domain validations and CAA (BR 3.2.2.9)",
    )
    ps = p.add_subparsers(dest="perspective_cmd", required=True, parser_class=Parser)
    i = ps.add_parser("init", help="write a perspective's directory, certificate and file")
    i.add_argument("dir", help="the perspective's directory (new or empty)")
    add_config(i)
    i.add_argument("--code", required=True, help='its name in logs and refusals ("ap-tokyo")')
    i.add_argument("--rir", required=True, help="its network's RIR: APNIC, ARIN, RIPE...")
    i.add_argument("--listen", required=True, help="HOST:PORT it serves mutual TLS on")
    i.add_argument("--resolver", required=True, help="HOST:PORT of its own resolver")
    i.add_argument("--name", action="append", default=[], help="another name for its certificate")
    i.add_argument(
        "--allow-private-targets",
        action="store_true",
        help="fetch from loopback and private addresses (a laboratory)",
    )
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=cmd_perspective_init)
    s = ps.add_parser("serve", help="run a perspective from its file")
    add_config(s)
    s.set_defaults(func=cmd_perspective_serve)
