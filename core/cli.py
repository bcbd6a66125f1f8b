"""The `hanko` command line: parses arguments and wires collaborators, nothing more.

Conventions for every subcommand: `-c CONFIG` (or HANKO_CONFIG), `--help`, exit 0 on
success, nonzero with one readable line per problem on stderr, `--json` where the output
is data. Tracebacks are for bugs only.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from core.errors import ConfigError, HankoError
from core.issuance.messages import ReasonName
from core.licenses import cli as licenses_cli

EXIT_FAILURE = 1
EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error in one line instead of a usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _add_config(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-c",
        "--config",
        type=Path,
        default=None,
        help="configuration file (default: $HANKO_CONFIG)",
    )


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + "\n")


# -- subcommands ----------------------------------------------------------------------


def cmd_init(args: argparse.Namespace) -> int:
    from core.bootstrap import init_ca
    from core.clock import SystemClock
    from signer.algorithms import KeyType

    result = init_ca(
        args.directory,
        key_type=KeyType(args.key_type),
        clock=SystemClock(),
        base_url=args.base_url,
    )
    if args.json:
        _print_json(
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
    _, problems = check_config(path)
    if problems:
        raise ConfigError(problems)
    if args.json:
        _print_json({"config": str(path), "ok": True})
    else:
        print(f"{path}: ok")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from core.config import load_config
    from core.service import serve

    serve(load_config(args.config))
    return 0


def cmd_bench_store(args: argparse.Namespace) -> int:
    from bench.store_commit import main as bench_main

    return bench_main(["--json"] if args.json else [])


def cmd_bench_issue(args: argparse.Namespace) -> int:
    from bench.issue_load import run_from_cli

    return run_from_cli(args)


def cmd_bench_ocsp(args: argparse.Namespace) -> int:
    from bench.ocsp_load import run_from_cli

    return run_from_cli(args)


def cmd_bench_crl(args: argparse.Namespace) -> int:
    from bench.crl_load import run_from_cli

    return run_from_cli(args)


def cmd_bench_signer(args: argparse.Namespace) -> int:
    from bench.signer_load import run_from_cli

    return run_from_cli(args)


def _run_with_engine(cfg: Any, job: Callable[[Any], Any]) -> Any:
    """Run `job(engine)` with a one-worker signer and the store writer, then stop both."""
    import trio

    from core.clock import SystemClock
    from core.wiring import issuance_engine, open_store, signer_pool, store_writer

    store = open_store(cfg)
    result: list[Any] = []
    try:

        async def main() -> None:
            pool = signer_pool(cfg, workers=1)
            writer = store_writer(cfg, store)
            async with trio.open_nursery() as nursery:
                await nursery.start(writer.run)
                await nursery.start(pool.run)
                engine = issuance_engine(
                    cfg, signer=pool, store=store, writer=writer, clock=SystemClock()
                )
                result.append(await job(engine))
                nursery.cancel_scope.cancel()

        trio.run(main)
    finally:
        store.close()
    return result[0]


def _print_struct(obj: Any) -> None:
    import msgspec

    _print_json(msgspec.to_builtins(obj))


def cmd_org_create(args: argparse.Namespace) -> int:
    from core.admin_messages import OrganizationIn
    from core.clock import SystemClock
    from core.config import load_config
    from core.licenses.desk import LicenseDesk
    from core.rpc import org_record
    from core.wiring import license_settings, open_store

    cfg = load_config(args.config)
    body = OrganizationIn(
        id=args.id,
        level=args.level,
        organization=args.name,
        country=args.country,
        state=args.state,
        locality=args.locality,
        jurisdiction_country=args.jurisdiction_country,
        business_category=args.business_category,
        registration_number=args.registration_number,
        account=args.account,
        parent=args.parent,
    )
    org = org_record(body, SystemClock())
    desk = LicenseDesk(license_settings(cfg), SystemClock())
    with open_store(cfg) as store:
        org = store.write(desk.attach_org(org, actor="cli"))
    if args.json:
        _print_struct(org)
    else:
        print(f"organization {org.id} ({org.level.upper()}): {org.organization}")
    return 0


def cmd_domain_remove(args: argparse.Namespace) -> int:
    from core.clock import SystemClock, to_epoch
    from core.config import load_config
    from core.issuance.names import normalize_dns_name
    from core.wiring import open_store

    cfg = load_config(args.config)
    domain = normalize_dns_name(args.domain, allow_wildcard=False)
    at_us = to_epoch(SystemClock().now()) * 1_000_000
    with open_store(cfg) as store:
        store.write(lambda t: t.remove_domain(args.org, domain, at_us=at_us, actor="cli"))
    print(f"domain {domain} removed from {args.org}: no new certificate will name it")
    return 0


def cmd_domain_validate(args: argparse.Namespace) -> int:
    from core.admin_messages import DomainIn
    from core.clock import SystemClock, to_epoch
    from core.config import load_config
    from core.rpc import domain_record
    from core.wiring import open_store

    cfg = load_config(args.config)
    rec = domain_record(args.org, DomainIn(domain=args.domain, method=args.method), SystemClock())

    at_us = to_epoch(SystemClock().now()) * 1_000_000
    with open_store(cfg) as store:
        store.write(lambda t: t.put_domain(rec, at_us=at_us, actor="cli"))
    if args.json:
        _print_struct(rec)
    else:
        print(f"domain {rec.domain} validated for {args.org} by {rec.method}")
    return 0


def cmd_issue(args: argparse.Namespace) -> int:
    from core.config import load_config
    from core.errors import HankoError
    from core.issuance.messages import IssueRequest

    cfg = load_config(args.config)
    try:
        csr = args.csr.read_bytes().decode("ascii", errors="replace")
    except OSError as exc:
        raise HankoError(f"cannot read {args.csr}: {exc.strerror}") from None
    request = IssueRequest(
        csr=csr,
        profile=args.profile,
        organization=args.organization,
        validity_days=args.days,
        renewal_of=args.renewal_of,
        reissue_of=args.reissue_of,
        license=args.license,
    )
    result = _run_with_engine(cfg, lambda engine: engine.issue(request, actor="cli"))
    if args.json:
        _print_struct(result)
    else:
        sys.stdout.write(result.certificate + result.chain)
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    from core.config import load_config

    cfg = load_config(args.config)
    view = _run_with_engine(
        cfg, lambda engine: engine.revoke(args.serial, args.reason, actor="cli")
    )
    if args.json:
        _print_struct(view)
    else:
        state = "was already revoked" if view.already_revoked else "revoked"
        print(f"{view.serial} {state} at {view.revoked_at.isoformat()} ({view.reason})")
    return 0


def cmd_crl(args: argparse.Namespace) -> int:
    from core.config import load_config

    cfg = load_config(args.config)
    if args.action == "urls":
        from core.wiring import crl_url_list

        listing = crl_url_list(cfg)
        if args.json:
            _print_json(listing)
        else:
            print("\n".join(listing["crl_urls"]))
        return 0

    async def job(engine: Any) -> Any:
        from datetime import timedelta

        from core.clock import SystemClock
        from core.wiring import crl_publisher

        publisher = crl_publisher(
            cfg,
            signer=engine.signer,
            store=engine.store,
            writer=engine.writer,
            clock=SystemClock(),
            directory=args.out,
        )
        # "Changed" means anything that would be due with no waiting: new revocations,
        # a partition never published or whose file is gone, a CRL past its cadence.
        jobs = publisher.due(
            change_delay=timedelta(0),
            cadence=timedelta(seconds=cfg.crl.cadence.seconds),
            force=args.all,
        )
        return await publisher.run(jobs)

    published = _run_with_engine(cfg, job)
    if args.json:
        _print_json(
            [
                {
                    "partition": c.partition,
                    "kind": c.kind.value,
                    "number": c.number,
                    "entries": c.entries,
                    "bytes": c.size,
                    "path": str(c.path),
                }
                for c in published
            ]
        )
    elif not published:
        print("every CRL is up to date (--all rebuilds them anyway)")
    else:
        for c in published:
            print(f"{c.path}: {c.kind.value} CRL number {c.number}, {c.entries} entries")
    return 0


def cmd_ocsp_export(args: argparse.Namespace) -> int:
    import time

    from core.config import load_config
    from core.wiring import open_store
    from ocsp.codec import CertIdHash
    from ocsp.export import export_responses

    cfg = load_config(args.config)
    hash_alg = CertIdHash.from_name(args.hash)
    if args.hash not in cfg.ocsp.cert_id_hashes:
        raise HankoError(
            f"responses are not pre-signed for {args.hash} CertIDs (see ocsp.cert_id_hashes)"
        )
    with open_store(cfg, readonly=True) as store:
        summary = export_responses(store, args.out, hash_alg=hash_alg, now=int(time.time()))
    removed = (
        f", {summary.removed} files of expired certificates removed" if summary.removed else ""
    )
    print(f"{args.out}: {summary.written} OCSP responses{removed}")
    if summary.stale:
        shown = ", ".join(summary.stale[:5]) + (", ..." if len(summary.stale) > 5 else "")
        print(
            f"hanko: error: {len(summary.stale)} live certificates have no current response"
            f" (not signed yet, or past nextUpdate: is the refresher running?); their files"
            f" were left as they were: {shown}",
            file=sys.stderr,
        )
        return 1
    return 0


def cmd_ca_renew_responder(args: argparse.Namespace) -> int:
    from core.clock import SystemClock
    from core.config import load_config
    from core.responder_cert import renew_responder

    cfg = load_config(args.config)
    done = renew_responder(cfg, clock=SystemClock())
    cert = done.certificate
    print(
        f"OCSP responder certificate renewed: serial {cert.serial_number:x}, valid until "
        f"{cert.not_valid_after_utc.isoformat()} (the previous one is kept as {done.kept_as})"
    )
    return 0


# -- parser ---------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="hanko", description="hanko certificate authority back end")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("init", help="create a development CA (SoftHSM token, CA certs, LMDB)")
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
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("check-config", help="validate a configuration file")
    _add_config(p)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_check_config)

    p = sub.add_parser("serve", help="run the service in the foreground")
    _add_config(p)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("org", help="organizations (the validated subject of certificates)")
    org = p.add_subparsers(dest="org", required=True, parser_class=_Parser)
    o = org.add_parser("create", help="record an organization whose identity was validated")
    _add_config(o)
    o.add_argument("--id", required=True, help="organization id used by issuance requests")
    o.add_argument("--level", choices=["ov", "ev"], required=True)
    o.add_argument("--name", required=True, help="registered English name (subject O)")
    o.add_argument("--country", required=True, help="two-letter ISO code, e.g. JP")
    o.add_argument("--state", help="romanized prefecture, e.g. Tokyo-to")
    o.add_argument("--locality", help="romanized city or ward, e.g. Chiyoda-ku (no numbers)")
    o.add_argument("--jurisdiction-country", help="EV: country of incorporation")
    o.add_argument("--business-category", help="EV: e.g. 'Private Organization'")
    o.add_argument("--registration-number", help="EV: company registration number")
    o.add_argument("--account", help="the account (primary client) it belongs to")
    o.add_argument("--parent", help="sub-organization: the primary organization (OV only)")
    o.add_argument("--json", action="store_true", help="print the result as JSON")
    o.set_defaults(func=cmd_org_create)

    licenses_cli.add_parser(sub, _Parser, _add_config)

    p = sub.add_parser("domain", help="domain validations of an organization")
    dom = p.add_subparsers(dest="domain_cmd", required=True, parser_class=_Parser)
    d = dom.add_parser("validate", help="record that an organization controls a domain")
    _add_config(d)
    d.add_argument("--org", required=True)
    d.add_argument("--domain", required=True, help="the validated domain, e.g. example.co.jp")
    d.add_argument("--method", choices=["dns-txt", "http-file", "email"], default="dns-txt")
    d.add_argument("--json", action="store_true", help="print the result as JSON")
    d.set_defaults(func=cmd_domain_validate)

    d = dom.add_parser("remove", help="withdraw a domain validation: no new certificate names it")
    _add_config(d)
    d.add_argument("--org", required=True)
    d.add_argument("--domain", required=True)
    d.set_defaults(func=cmd_domain_remove)

    p = sub.add_parser("issue", help="issue a certificate; prints it and its chain as PEM")
    _add_config(p)
    p.add_argument("--csr", type=Path, required=True, help="CSR file (PEM or DER)")
    p.add_argument("--profile", required=True, help="profile name from the configuration")
    p.add_argument("--organization", required=True, help="organization id")
    p.add_argument("--days", type=int, default=None, help="validity in days (default: profile)")
    p.add_argument("--renewal-of", default=None, help="serial (hex) of the certificate renewed")
    p.add_argument("--reissue-of", default=None, help="serial (hex) of the certificate reissued")
    p.add_argument("--license", default=None, help="the license that pays (default: account's)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_issue)

    p = sub.add_parser("revoke", help="revoke a certificate")
    _add_config(p)
    p.add_argument("--serial", required=True, help="serial in hex")
    p.add_argument(
        "--reason",
        default="unspecified",
        choices=typing.get_args(ReasonName),
        help="a BR 7.2.2 reason (default: unspecified)",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_revoke)

    p = sub.add_parser(
        "crl", help="build and publish every changed partition CRL, or list their URLs"
    )
    p.add_argument(
        "action",
        nargs="?",
        choices=["build", "urls"],
        default="build",
        help="build (default) or urls",
    )
    _add_config(p)
    p.add_argument("--out", type=Path, default=None, help="folder (default: [crl] publish_dir)")
    p.add_argument("--all", action="store_true", help="rebuild every partition, changed or not")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_crl)

    p = sub.add_parser("ocsp", help="pre-signed OCSP responses")
    oc = p.add_subparsers(dest="ocsp_command", required=True)
    e = oc.add_parser(
        "export", help="write each live certificate's response to DIR/<serial octets in hex>.der"
    )
    _add_config(e)
    e.add_argument("--out", type=Path, required=True, help="folder to write into")
    e.add_argument("--hash", choices=["sha1", "sha256"], default="sha1", help="CertID hash")
    e.set_defaults(func=cmd_ocsp_export)

    p = sub.add_parser("ca", help="the CA's own certificates")
    ca = p.add_subparsers(dest="ca_command", required=True, parser_class=_Parser)
    c = ca.add_parser(
        "renew-responder",
        help="a new certificate for the OCSP responder's key; a running service adopts it",
    )
    _add_config(c)
    c.set_defaults(func=cmd_ca_renew_responder)

    p = sub.add_parser("bench", help="run a benchmark")
    bench = p.add_subparsers(dest="bench", required=True, parser_class=_Parser)
    b = bench.add_parser("store", help="durable writes/s: group commit against one commit each")
    b.add_argument("--json", action="store_true", help="print the result as JSON")
    b.set_defaults(func=cmd_bench_store)
    b = bench.add_parser("signer", help="signatures/s and latency through the batched signer")
    _add_config(b)
    b.add_argument("--json", action="store_true", help="print the result as JSON")
    b.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    b.add_argument("--callers", default="1,16,256", help="comma-separated concurrent caller counts")
    b.add_argument("--rounds", type=int, default=3, help="interleaved rounds (medians reported)")
    b.set_defaults(func=cmd_bench_signer)
    b = bench.add_parser("issue", help="certificates/s through the signing RPC and the ceiling")
    _add_config(b)
    b.add_argument("--json", action="store_true", help="print the result as JSON")
    b.add_argument("--seconds", type=float, default=10.0, help="time per measurement")
    b.add_argument("--connections", type=int, default=64, help="connections, single endpoint")
    b.add_argument("--batch", type=int, default=100, help="certificates per batch request")
    b.add_argument("--batch-connections", type=int, default=4, help="connections, batch endpoint")
    b.set_defaults(func=cmd_bench_issue)
    b = bench.add_parser("ocsp", help="OCSP responder against cfssl and nginx; refresh; latency")
    _add_config(b)
    b.add_argument("--certs", type=int, default=1_000_000, help="certificates in the store")
    b.add_argument("--revoked", type=float, default=0.1, help="fraction revoked")
    b.add_argument("--sample", type=int, default=10_000, help="distinct requests wrk cycles")
    b.add_argument("--seconds", type=float, default=10.0, help="per wrk run")
    b.add_argument("--connections", type=int, default=64)
    b.add_argument(
        "--hashes",
        default="",
        help="CertID hashes to pre-sign (sha1,sha256); default: the config's",
    )
    b.add_argument("--json", action="store_true", help="print the report as JSON")
    b.set_defaults(func=cmd_bench_ocsp)
    b = bench.add_parser("crl", help="full and delta CRLs against openssl ca and cryptography")
    _add_config(b)
    b.add_argument("--entries", type=int, default=1_000_000, help="revocations per set")
    b.add_argument("--json", action="store_true", help="print the report as JSON")
    b.set_defaults(func=cmd_bench_crl)
    return parser


def _fail(lines: Sequence[str]) -> int:
    for line in lines:
        sys.stderr.write(f"hanko: error: {line}\n")
    return EXIT_FAILURE


def _leaf(exc: BaseException) -> BaseException:
    """The error to report from a trio nursery's exception group: a HankoError or a
    KeyboardInterrupt if there is one (anything else stays a bug with a traceback)."""
    if isinstance(exc, BaseExceptionGroup):
        leaves = [_leaf(e) for e in exc.exceptions]
        for wanted in (HankoError, KeyboardInterrupt):
            for leaf in leaves:
                if isinstance(leaf, wanted):
                    return leaf
    return exc


# Every `hanko` process is a core process: one trio thread that feeds the signer workers
# and answers requests, plus helper threads (the store writer's group commits, CSR
# intake) that run whole batches of Python under the GIL. At CPython's default 5 ms
# switch interval the trio thread waits up to that long for the GIL behind a commit, and
# the workers' pipes run dry meanwhile. Refreshing 300,000 certificates: 6,700-7,200/s
# at 5 ms (three runs), 7,100-8,200/s at 0.5-2 ms (five runs; docs/architecture.md).
SWITCH_INTERVAL = 0.002

# The cyclic collector's first generation runs after 700 net allocations of container
# objects by default. A refresh keeps tens of thousands of small tracked objects in
# flight (signer requests, pending batches), so at 700 the collector ran about 7 times
# per 1,000 certificates, walking the same live objects again and again: 15-20% of the
# core's CPU per refreshed response. Almost everything the hot paths allocate dies by
# reference counting, so at 20,000 a refresh of 200,000 certificates collects twice
# (40-43 against 32-36 us of core CPU per response, docs/architecture.md).
GC_THRESHOLD = 20_000


def tune_interpreter() -> None:
    """Every `hanko` process is a core process (see above): set what it needs of CPython."""
    sys.setswitchinterval(SWITCH_INTERVAL)
    gc.set_threshold(GC_THRESHOLD)


def main(argv: Sequence[str] | None = None) -> int:
    tune_interpreter()
    args = build_parser().parse_args(argv)
    if getattr(args, "base_url", "unset") is None:
        from core.bootstrap import DEFAULT_BASE_URL

        args.base_url = DEFAULT_BASE_URL
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        try:
            return func(args)
        except BaseExceptionGroup as group:
            raise _leaf(group) from group
    except ConfigError as exc:
        return _fail(exc.problems or [exc.message])
    except HankoError as exc:
        return _fail([exc.message])
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`hanko crl urls | head`): not an error worth a traceback.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
