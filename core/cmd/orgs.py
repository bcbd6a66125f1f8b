"""`hanko org` and `hanko domain`: validated organizations and their domains."""

from __future__ import annotations

import argparse
from typing import Any

from core.cmd.common import (
    Parser,
    add_config,
    config,
    emit,
    print_json,
    reading,
    write,
)
from core.cmd.dcv import register_domain


def cmd_org_create(args: argparse.Namespace) -> int:
    from core.api.admin_messages import OrganizationIn
    from core.api.rpc import org_record
    from core.base.clock import SystemClock
    from core.cmd.wiring import license_settings
    from core.licenses.desk import LicenseDesk

    cfg = config(args)
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
    org = write(cfg, desk.attach_org(org, actor="cli"))
    return emit(args, org, [f"organization {org.id} ({org.level.upper()}): {org.organization}"])


def cmd_org_level(args: argparse.Namespace) -> int:
    from core.base.clock import SystemClock, to_epoch
    from core.issuance.org_levels import LevelChange, level_op

    cfg = config(args)
    change = LevelChange(
        level="ev" if args.org_cmd == "upgrade" else "ov",
        jurisdiction_country=getattr(args, "jurisdiction_country", None),
        business_category=getattr(args, "business_category", None),
        registration_number=getattr(args, "registration_number", None),
    )
    org = write(cfg, level_op(args.id, change, now=to_epoch(SystemClock().now()), actor="cli"))
    return emit(
        args,
        _org_json(org),
        [f"organization {org.id} is now {org.level.upper()}: {org.organization}"],
    )


def cmd_domain_remove(args: argparse.Namespace) -> int:
    from core.base.clock import SystemClock
    from core.base.dnsnames import normalize_dns_name

    cfg = config(args)
    domain = normalize_dns_name(args.domain, allow_wildcard=False)
    at_us = SystemClock().now_us()
    write(cfg, lambda t: t.remove_domain(args.org, domain, at_us=at_us, actor="cli"))
    return emit(
        args,
        {"org": args.org, "domain": domain, "removed": True},
        [f"domain {domain} removed from {args.org}: no new certificate will name it"],
    )


def cmd_domain_validate(args: argparse.Namespace) -> int:
    import getpass

    from core.api.admin_messages import DomainIn
    from core.api.rpc import domain_out, domain_record
    from core.base.clock import SystemClock

    cfg = config(args)
    body = DomainIn(domain=args.domain, method=args.method)
    actor = f"cli:{getpass.getuser()}"
    rec = domain_record(args.org, body, SystemClock(), actor=actor, allowed=cfg.dcv.allow_attested)

    at_us = SystemClock().now_us()
    write(cfg, lambda t: t.put_domain(rec, at_us=at_us, actor="cli"))
    return emit(
        args,
        domain_out(rec),
        [f"domain {rec.domain} recorded for {args.org} as attested ({rec.method}) by {actor}"],
    )


def _org_json(org: Any) -> dict[str, Any]:
    import msgspec

    from core.base.clock import from_epoch

    out: dict[str, Any] = msgspec.structs.asdict(org)
    out["validated_at"] = from_epoch(org.validated_at).isoformat()
    return out


def cmd_org_list(args: argparse.Namespace) -> int:

    cfg = config(args)
    with reading(cfg) as txn:
        orgs = list(txn.iter_orgs(args.account))
        domains = {o.id: sum(1 for _ in txn.iter_domains(o.id)) for o in orgs}
    if args.json:
        print_json([{**_org_json(o), "domains": domains[o.id]} for o in orgs])
        return 0
    for o in orgs:
        print(f"{o.id}\t{o.level}\t{o.account or '-'}\t{domains[o.id]} domains\t{o.organization}")
    return 0


def cmd_org_show(args: argparse.Namespace) -> int:
    from core.base.clock import from_epoch
    from core.base.errors import NotFound

    cfg = config(args)
    with reading(cfg) as txn:
        org = txn.get_org(args.id)
        if org is None:
            raise NotFound(f"no organization {args.id!r} (hanko org list)")
        domains = list(txn.iter_domains(org.id))
    if args.json:
        print_json({**_org_json(org), "domains": [_domain_json(d) for d in domains]})
        return 0
    subject = ", ".join(
        f"{k}={v}"
        for k, v in (
            ("O", org.organization),
            ("L", org.locality),
            ("ST", org.state),
            ("C", org.country),
        )
        if v
    )
    print(f"organization {org.id} ({org.level.upper()}), account {org.account or '-'}")
    print(f"subject: {subject}")
    print(f"validated: {from_epoch(org.validated_at).isoformat()}")
    if org.parent:
        print(f"sub-organization of {org.parent}")
    for d in domains:
        print(f"domain {d.domain} ({d.method}, {from_epoch(d.validated_at).isoformat()})")
    return 0


def _domain_json(d: Any) -> dict[str, Any]:
    """A domain validation as an auditor reads it: how, when, on what evidence (the
    remote perspectives' quorum among it) and, for an attestation, who asserted it."""
    import json

    from core.base.clock import from_epoch

    return {
        "domain": d.domain,
        "method": d.method,
        "validated_at": from_epoch(d.validated_at).isoformat(),
        "evidence": json.loads(d.evidence) if d.evidence else {},
        "challenge": d.challenge or None,
        "attested_by": d.attested_by or None,
    }


def cmd_domain_list(args: argparse.Namespace) -> int:
    from core.base.errors import NotFound

    cfg = config(args)
    with reading(cfg) as txn:
        if txn.get_org(args.org) is None:
            raise NotFound(f"no organization {args.org!r} (hanko org list)")
        domains = list(txn.iter_domains(args.org))
    if args.json:
        print_json([_domain_json(d) for d in domains])
    else:
        for d in domains:
            print(f"{d.domain}\t{d.method}")
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("org", help="organizations (the validated subject of certificates)")
    org = p.add_subparsers(dest="org", required=True, parser_class=Parser)
    o = org.add_parser("create", help="record an organization whose identity was validated")
    add_config(o)
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
    o = org.add_parser("list", help="every organization (of one account with --account)")
    add_config(o)
    o.add_argument("--account", help="only this account's organizations")
    o.add_argument("--json", action="store_true", help="print the result as JSON")
    o.set_defaults(func=cmd_org_list)
    o = org.add_parser("show", help="one organization: its subject and validated domains")
    add_config(o)
    o.add_argument("id", help="organization id")
    o.add_argument("--json", action="store_true", help="print the result as JSON")
    o.set_defaults(func=cmd_org_show)
    _register_levels(org)

    p = sub.add_parser("domain", help="domain validations of an organization")
    dom = p.add_subparsers(dest="domain_cmd", required=True, parser_class=Parser)
    register_domain(dom)
    d = dom.add_parser(
        "validate",
        help="record a domain validation the operator asserts (attested; [dcv] allow_attested)",
    )
    add_config(d)
    d.add_argument("--org", required=True)
    d.add_argument("--domain", required=True, help="the validated domain, e.g. example.co.jp")
    d.add_argument("--method", choices=["dns-txt", "http-file", "email"], default="dns-txt")
    d.add_argument("--json", action="store_true", help="print the result as JSON")
    d.set_defaults(func=cmd_domain_validate)

    d = dom.add_parser("remove", help="withdraw a domain validation: no new certificate names it")
    add_config(d)
    d.add_argument("--org", required=True)
    d.add_argument("--domain", required=True)
    d.add_argument("--json", action="store_true", help="print the result as JSON")
    d.set_defaults(func=cmd_domain_remove)

    d = dom.add_parser("list", help="the validated domains of an organization")
    add_config(d)
    d.add_argument("--org", required=True)
    d.add_argument("--json", action="store_true", help="print the result as JSON")
    d.set_defaults(func=cmd_domain_list)


def _register_levels(org: Any) -> None:
    o = org.add_parser(
        "upgrade", help="OV to EV: the EV fields checked again, a new validation date"
    )
    add_config(o)
    o.add_argument("id", help="organization id")
    o.add_argument("--level", choices=["ev"], required=True)
    o.add_argument("--jurisdiction-country", required=True, help="country of incorporation")
    o.add_argument("--business-category", required=True, help="e.g. 'Private Organization'")
    o.add_argument("--registration-number", required=True, help="company registration number")
    o.add_argument("--json", action="store_true", help="print the result as JSON")
    o.set_defaults(func=cmd_org_level, org_cmd="upgrade")
    o = org.add_parser("downgrade", help="EV to OV: refused while it has live EV certificates")
    add_config(o)
    o.add_argument("id", help="organization id")
    o.add_argument("--level", choices=["ov"], required=True)
    o.add_argument("--json", action="store_true", help="print the result as JSON")
    o.set_defaults(func=cmd_org_level, org_cmd="downgrade")
