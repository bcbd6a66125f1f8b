"""`hanko crl` and `hanko ocsp`: building CRLs and exporting OCSP responses by hand."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import msgspec

from core.base.errors import HankoError
from core.cmd.common import add_config, config, emit, print_json, run_with_engine


def cmd_crl(args: argparse.Namespace) -> int:

    cfg = config(args)
    if args.action == "urls":
        from core.cmd.wiring_issuers import crl_url_list

        listing = crl_url_list(cfg)
        return emit(args, listing, ["\n".join(listing["crl_urls"])])

    async def job(engine: Any) -> Any:
        from datetime import timedelta

        from core.base.clock import SystemClock
        from core.cmd.wiring_issuers import crl_publishers

        published = []
        for publisher in crl_publishers(
            cfg,
            signer=engine.signer,
            store=engine.store,
            writer=engine.writer,
            clock=SystemClock(),
            directory=args.out,
        ):
            # "Changed" means anything that would be due with no waiting: new
            # revocations, a shard never published or whose file is gone, a CRL past
            # its cadence.
            jobs = publisher.due(
                change_delay=timedelta(0),
                cadence=timedelta(seconds=cfg.crl.cadence.seconds),
                force=args.all,
            )
            published += await publisher.run(jobs)
        return published

    published = run_with_engine(cfg, job)
    if args.json:
        print_json(
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

    from core.store.configured import open_store
    from ocsp.codec import CertIdHash
    from ocsp.export import export_responses

    cfg = config(args)
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
    if args.json:
        print_json({"out": str(args.out), **msgspec.to_builtins(summary)})
    else:
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


def register(sub: Any) -> None:
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
    add_config(p)
    p.add_argument("--out", type=Path, default=None, help="folder (default: [crl] publish_dir)")
    p.add_argument("--all", action="store_true", help="rebuild every partition, changed or not")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_crl)

    p = sub.add_parser("ocsp", help="pre-signed OCSP responses")
    oc = p.add_subparsers(dest="ocsp_command", required=True)
    e = oc.add_parser(
        "export", help="write each live certificate's response to DIR/<serial octets in hex>.der"
    )
    add_config(e)
    e.add_argument("--out", type=Path, required=True, help="folder to write into")
    e.add_argument("--hash", choices=["sha1", "sha256"], default="sha1", help="CertID hash")
    e.add_argument("--json", action="store_true", help="print the result as JSON")
    e.set_defaults(func=cmd_ocsp_export)
