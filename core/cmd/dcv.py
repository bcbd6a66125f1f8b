"""`hanko domain challenge` and `hanko domain verify`: domain validation performed by
hanko (dns-change, website-change, email), from the command line, on the
configuration's store (the same as POST /v1/admin/organizations/{org}/domains/
challenges and .../{id}/verify)."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from core.cmd.common import add_config, config, emit, run_with_writer

T = TypeVar("T")


def _with_domain_control(cfg: Any, job: Callable[[Any], Awaitable[T]]) -> T:
    """Run `job(domain_control)` with the store writer running, then stop it."""
    from core.base.clock import SystemClock
    from core.cmd.wiring_dcv import domain_control

    async def with_dcv(store: Any, writer: Any, nursery: Any) -> T:
        return await job(domain_control(cfg, store=store, writer=writer, clock=SystemClock()))

    return run_with_writer(cfg, with_dcv)


def cmd_challenge(args: argparse.Namespace) -> int:
    from core.api.dcv import challenge_out

    cfg = config(args)
    ch = _with_domain_control(
        cfg,
        lambda dcv: dcv.challenge(
            args.org, args.domain, args.method, actor="cli", address=args.address
        ),
    )
    out = challenge_out(ch)
    where = {
        "dns-change": f"put a TXT record at {ch.record_name} holding {ch.random_value}",
        "website-change": f"serve {ch.random_value} as the file {ch.url}",
        "email": f"the value was sent to {ch.sent_to}: the recipient gives it back",
    }[ch.method]
    return emit(
        args,
        out,
        [
            f"challenge {ch.id} for {ch.domain} ({ch.method}), until {out.expires_at.isoformat()}",
            f"{where}; then: hanko domain verify --org {args.org} --challenge {ch.id}",
        ],
    )


def cmd_verify(args: argparse.Namespace) -> int:
    from core.api.dcv import validation_out

    cfg = config(args)
    rec = _with_domain_control(
        cfg, lambda dcv: dcv.verify(args.org, args.challenge, actor="cli", value=args.value)
    )
    return emit(
        args,
        validation_out(rec),
        [f"domain {rec.domain} validated for {args.org} by {rec.method} ({rec.challenge})"],
    )


def register_domain(dom: Any) -> None:
    """The subcommands under `hanko domain`."""
    d = dom.add_parser(
        "challenge", help="a domain validation hanko performs: dns-change, website-change, email"
    )
    add_config(d)
    d.add_argument("--org", required=True)
    d.add_argument("--domain", required=True, help="the domain to validate, e.g. example.co.jp")
    d.add_argument("--method", required=True, choices=["dns-change", "website-change", "email"])
    d.add_argument(
        "--address",
        help="email: admin@, administrator@, webmaster@, hostmaster@ or postmaster@ the"
        " domain (default admin@)",
    )
    d.add_argument("--json", action="store_true", help="print the challenge as JSON")
    d.set_defaults(func=cmd_challenge)

    d = dom.add_parser(
        "verify", help="check a challenge now; on success the domain validation is recorded"
    )
    add_config(d)
    d.add_argument("--org", required=True)
    d.add_argument("--challenge", required=True, help="the id `domain challenge` printed")
    d.add_argument("--value", help="email: the random value the recipient gave back")
    d.add_argument("--json", action="store_true", help="print the validation as JSON")
    d.set_defaults(func=cmd_verify)
