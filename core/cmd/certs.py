"""`hanko issue` and `hanko revoke`: one certificate at a time, through the engine."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import msgspec

from core.base.reasons import ALL_REASON_NAMES
from core.cmd.common import add_config, config, print_struct, run_with_engine


def cmd_issue(args: argparse.Namespace) -> int:
    from core.base.errors import HankoError
    from core.issuance.messages import IssueRequest, ScheduledRenewalView

    cfg = config(args)
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
        coupon=args.coupon,
        dealer=args.dealer,
    )
    result = run_with_engine(cfg, lambda engine: engine.issue(request, actor="cli"))
    if isinstance(result, ScheduledRenewalView):
        # A renewal before its issue window: `hanko serve` issues it when it opens.
        if args.json:
            print_struct(result)
        else:
            print(
                f"renewal {result.id} of {result.renewal_of} scheduled for"
                f" {result.issue_at.isoformat()} (hanko renewals list)"
            )
        return 0
    root = cfg.path(cfg.ca.root_cert).read_text() if args.with_root else ""
    if args.json:
        print_struct(msgspec.structs.replace(result, chain=result.chain + root))
    else:
        sys.stdout.write(result.certificate + result.chain + root)
        # The serial on stderr, so stdout stays the PEM a server is given.
        sys.stderr.write(f"issued {result.serial} (valid until {result.not_after.isoformat()})\n")
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:

    cfg = config(args)
    view = run_with_engine(cfg, lambda engine: engine.revoke(args.serial, args.reason, actor="cli"))
    if args.json:
        print_struct(view)
    else:
        state = "was already revoked" if view.already_revoked else "revoked"
        print(f"{view.serial} {state} at {view.revoked_at.isoformat()} ({view.reason})")
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser(
        "issue", help="issue a certificate; prints it and its chain as PEM, the serial on stderr"
    )
    add_config(p)
    p.add_argument("--csr", type=Path, required=True, help="CSR file (PEM or DER)")
    p.add_argument("--profile", required=True, help="profile name from the configuration")
    p.add_argument("--organization", required=True, help="organization id")
    p.add_argument("--days", type=int, default=None, help="validity in days (default: profile)")
    p.add_argument("--renewal-of", default=None, help="serial (hex) of the certificate renewed")
    p.add_argument("--reissue-of", default=None, help="serial (hex) of the certificate reissued")
    p.add_argument("--license", default=None, help="the license that pays (default: account's)")
    p.add_argument("--coupon", default=None, help="a coupon number that pays (from its purchase)")
    p.add_argument("--dealer", default=None, help="the dealer code the coupon was sold with")
    p.add_argument(
        "--with-root", action="store_true", help="end the chain with the root (default: without)"
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_issue)

    p = sub.add_parser("revoke", help="revoke a certificate")
    add_config(p)
    p.add_argument("--serial", required=True, help="serial in hex")
    p.add_argument(
        "--reason",
        default="unspecified",
        choices=ALL_REASON_NAMES,
        help="a BR 7.2.2 reason (default: unspecified)",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_revoke)
