"""`hanko caa check`: what CAA says of a name for this CA now, looked up afresh through
the configured resolver (for operators and support). Exit 0 when issuance would be
permitted, 1 when it would be refused or the lookup failed."""

from __future__ import annotations

import argparse
from typing import Any

from core.cmd.common import EXIT_FAILURE, Parser, add_config, config, print_json


def cmd_check(args: argparse.Namespace) -> int:
    import trio

    from core.base.clock import SystemClock, to_epoch
    from core.base.dnsnames import normalize_dns_name
    from core.base.errors import ConfigError
    from core.cmd.wiring import dns_resolver
    from core.dns.caa import Decision, Request
    from core.issuance.caa_check import CaaChecker
    from core.issuance.caa_screen import detail

    cfg = config(args)
    if not cfg.caa.identities:
        raise ConfigError(["caa.identities: name the CA's issuer domains to check CAA against"])
    name = normalize_dns_name(args.domain.removeprefix("*."), allow_wildcard=False)
    wildcard = args.wildcard or args.domain.startswith("*.")
    clock = SystemClock()
    checker = CaaChecker(dns_resolver(cfg), identities=cfg.caa.identities, clock=clock)
    request = Request(
        name=name,
        wildcard=wildcard,
        account_uri=args.account_uri,
        method=args.method,
    )

    async def ask() -> Decision | Exception:
        [result] = await checker.decide_now([request], to_epoch(clock.now()))
        return result

    result = trio.run(ask)
    shown = ("*." if wildcard else "") + name
    if not isinstance(result, Decision):
        out: dict[str, Any] = {"domain": shown, "permitted": False, "error": str(result)}
        if args.json:
            print_json(out)
        else:
            print(f"{shown}: CAA could not be checked ({result}): issuance would be refused")
        return EXIT_FAILURE
    facts: dict[str, Any] = detail(result) | {
        "permitted": result.permitted,
        "reason": result.reason,
        "identities": list(cfg.caa.identities),
        "account_uri": args.account_uri,
        "method": request.method,
        "records": [r.text() for r in result.records],
    }
    if args.json:
        print_json(facts)
    else:
        verdict = "permitted" if result.permitted else "refused"
        print(f"{shown}: issuance {verdict}: {result.reason}")
        for r in result.records:
            print(f"  {result.found_at}\tCAA\t{r.text()}")
        if result.iodef:
            print(f"  violations are reported to: {' '.join(result.iodef)}")
    return 0 if result.permitted else EXIT_FAILURE


def register(sub: Any) -> None:
    p = sub.add_parser("caa", help="CAA: what a domain's records say of this CA")
    caa = p.add_subparsers(dest="caa_cmd", required=True, parser_class=Parser)
    c = caa.add_parser(
        "check", help="look a domain's CAA up now: exit 0 if issuance is permitted, 1 if not"
    )
    add_config(c)
    c.add_argument("--domain", required=True, help="the name, e.g. www.example.co.jp")
    c.add_argument("--wildcard", action="store_true", help="for *.DOMAIN (issuewild)")
    c.add_argument("--account-uri", help="the ACME account URL (RFC 8657 accounturi)")
    c.add_argument(
        "--method",
        help="the validation method (RFC 8657 validationmethods): http-01, dns-01,"
        " dns-change, website-change, email",
    )
    c.add_argument("--json", action="store_true", help="print the decision as JSON")
    c.set_defaults(func=cmd_check)
