"""`hanko licenses`: the operator's accounts and licenses, straight on the store.

The same desk as the admin API: inputs go through the same msgspec types (same limits,
same errors), changes commit durably before anything is printed.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import msgspec

from core.base.errors import HankoError
from core.cmd.common import Parser, add_config

T = TypeVar("T")


def _typed(typ: type[T], **fields: Any) -> T:
    try:
        return msgspec.convert({k: v for k, v in fields.items() if v is not None}, typ)
    except msgspec.ValidationError as exc:
        raise HankoError(f"invalid input: {exc}", code="invalid_request") from None


def _emit(args: argparse.Namespace, view: Any, human: Callable[[Any], list[str]]) -> None:
    if args.json:
        data = msgspec.to_builtins(view)
        sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
    else:
        sys.stdout.write("".join(line + "\n" for line in human(view)))


def _account_lines(v: Any) -> list[str]:
    return [
        f"account {v.id}: {v.name}",
        f"  default license: {v.default_license or '-'}; extras: {v.extras_license or '-'}",
        f"  administrators ({v.included_admins} included): {', '.join(v.admins) or '-'}",
        f"  organizations ({v.included_orgs} included): {', '.join(v.organizations) or '-'}",
        f"  licenses: {', '.join(v.licenses) or '-'}",
    ]


def _license_lines(v: Any) -> list[str]:
    t = v.totals
    term = f", term to {v.term_last_day}" if v.term_last_day else ""
    lines = [
        f"license {v.id} ({v.kind}, quantity {v.quantity}{term}): {t.available} {t.unit}"
        f" available, {t.used} used, {t.purchased} purchased, {t.expiring_soon} expiring"
        f" soon, {t.lapsed} lapsed"
    ]
    lines += [
        f"  lot {lot.lot}: {lot.quantity} bought {lot.purchased_at.date()}, {lot.used} used,"
        f" {lot.lapsed} lapsed, lapses {lot.lapses_at.isoformat()}"
        for lot in v.lots
    ]
    if v.domains:
        lines.append(f"  domains: {', '.join(v.domains)}")
    return lines


def _inventory_lines(v: Any) -> list[str]:
    lines = [
        f"inventory of {v.account} at {v.at.isoformat()} (expiring soon: {v.expiring_soon_days}"
        " days)",
        f"{'':16}{'purchased':>12}{'used':>12}{'available':>12}{'expiring':>12}{'lapsed':>12}",
    ]
    for name in ("pooled", "non_pooled", "coupons", "domain_bundles", "monthly"):
        t = getattr(v, name)
        lines.append(
            f"{name:16}{t.purchased:>12}{t.used:>12}{t.available:>12}{t.expiring_soon:>12}"
            f"{t.lapsed:>12}  {t.unit}"
        )
    for lic in v.licenses:
        lines += _license_lines(lic)
    return lines


def _ledger_lines(v: Any) -> list[str]:
    return [
        f"{e.seq:>8} {e.at.isoformat()} {e.license} {e.movement} {e.amount:+d} {e.unit}"
        + (f" {e.item}" if e.item else "")
        + (f" {e.serial}" if e.serial else "")
        + (f" ({e.note})" if e.note else "")
        for e in v.entries
    ]


def _certificates_lines(v: Any) -> list[str]:
    lines = [
        f"{c.serial} {c.status} {c.not_after.date()} ({c.days_left} days) {','.join(c.names)}"
        for c in v.certificates
    ]
    lines.append(
        f"expiring in 30 days: {len(v.expiring_in_30_days)}, in 10 days:"
        f" {len(v.expiring_in_10_days)}"
    )
    return lines


def run(args: argparse.Namespace) -> int:
    from core.base.clock import SystemClock
    from core.cmd.wiring import license_settings, open_store
    from core.config import load_config
    from core.licenses import messages as lm
    from core.licenses.desk import LicenseDesk

    cfg = load_config(args.config)
    desk = LicenseDesk(license_settings(cfg), SystemClock())
    action = args.licenses_cmd
    with open_store(cfg, readonly=action in _READS) as store:
        if action in _READS:
            with store.read() as txn:
                if action == "inventory":
                    _emit(args, desk.inventory(txn, args.account), _inventory_lines)
                elif action == "show":
                    _emit(args, desk.account_view(txn, args.account), _account_lines)
                elif action == "ledger":
                    view = desk.ledger(txn, args.account, since=args.since, limit=args.limit)
                    _emit(args, view, _ledger_lines)
                elif action == "certificates":
                    _emit(args, desk.certificates(txn, args.account), _certificates_lines)
                else:  # check
                    result = desk.check(txn)
                    _emit(
                        args,
                        result,
                        lambda r: [
                            *r.problems,
                            f"{r.licenses} licenses, {r.ledger_entries} ledger entries:"
                            f" {'the books balance' if r.ok else 'PROBLEMS FOUND'}",
                        ],
                    )
                    return 0 if result.ok else 1
            return 0
        if action == "create-account":
            body = _typed(
                lm.AccountIn,
                id=args.account,
                name=args.name,
                included_admins=args.included_admins,
                included_orgs=args.included_orgs,
            )
            _emit(args, store.write(desk.create_account(body, actor="cli")), _account_lines)
        elif action == "configure":
            settings = _typed(
                lm.AccountSettingsIn,
                default_license=args.default_license,
                extras_license=args.extras_license,
            )
            _emit(
                args,
                store.write(desk.configure(args.account, settings, actor="cli")),
                _account_lines,
            )
        elif action == "add-admin":
            admin = _typed(lm.AdminIn, email=args.email)
            _emit(
                args, store.write(desk.add_admin(args.account, admin, actor="cli")), _account_lines
            )
        elif action == "remove-admin":
            _emit(
                args,
                store.write(desk.remove_admin(args.account, args.email, actor="cli")),
                _account_lines,
            )
        elif action == "buy":
            lic = _typed(
                lm.LicenseIn,
                id=args.license,
                kind=args.kind,
                quantity=args.quantity,
                years=args.years,
                months=args.months,
            )
            _emit(args, store.write(desk.buy(args.account, lic, actor="cli")), _license_lines)
        elif action == "add":
            more = _typed(lm.LicenseAddIn, quantity=args.quantity)
            _emit(
                args,
                store.write(desk.add(args.account, args.license, more, actor="cli")),
                _license_lines,
            )
        elif action == "renew":
            renewal = _typed(
                lm.LicenseRenewIn, years=args.years, months=args.months, quantity=args.quantity
            )
            _emit(
                args,
                store.write(desk.renew(args.account, args.license, renewal, actor="cli")),
                _license_lines,
            )
        elif action == "add-domain":
            dom = _typed(lm.LicenseDomainIn, domain=args.domain)
            _emit(
                args,
                store.write(desk.add_domain(args.account, args.license, dom, actor="cli")),
                _license_lines,
            )
        else:  # record-lapses
            n = store.write(desk.sweep())
            _emit(
                args, {"lapses_recorded": n}, lambda d: [f"{d['lapses_recorded']} lapses recorded"]
            )
    return 0


_READS = frozenset({"inventory", "show", "ledger", "certificates", "check"})


def register(sub: Any) -> None:
    p = sub.add_parser("licenses", help="accounts, licenses, inventory and the ledger")
    lic = p.add_subparsers(dest="licenses_cmd", required=True, parser_class=Parser)

    def action(name: str, help_text: str, *, account: bool = True, license: bool = False) -> Any:
        a = lic.add_parser(name, help=help_text)
        add_config(a)
        if account:
            a.add_argument("account", help="account id")
        if license:
            a.add_argument("license", help="license id")
        a.add_argument("--json", action="store_true", help="print the result as JSON")
        a.set_defaults(func=run)
        return a

    a = action("create-account", "create an account (a primary client)")
    a.add_argument("--name", required=True)
    a.add_argument("--included-admins", type=int, default=None, help="default 1")
    a.add_argument("--included-orgs", type=int, default=None, help="default 1")
    a = action("configure", "set an account's default and extras licenses")
    a.add_argument("--default-license")
    a.add_argument("--extras-license", help="pays extra administrators and organizations")
    a = action("add-admin", "add an administrator (beyond those included: takes a unit)")
    a.add_argument("email")
    a = action("remove-admin", "remove an administrator (a unit paid for them is not returned)")
    a.add_argument("email")
    action("show", "an account: its organizations, administrators and licenses")
    a = action("buy", "buy a license", license=True)
    a.add_argument(
        "--kind",
        required=True,
        choices=["pooled", "non_pooled", "domain_bundle", "coupon", "monthly"],
    )
    a.add_argument(
        "--quantity",
        type=int,
        required=True,
        help="certificates (pooled), units, coupons, bundle licenses, live limit",
    )
    a.add_argument("--years", type=int, help="pooled: the term, 1 to 5")
    a.add_argument("--months", type=int, help="monthly: months paid")
    a = action("add", "add to a license (never reduce)", license=True)
    a.add_argument("--quantity", type=int, required=True)
    a = action("renew", "renew a pooled, domain-bundle or monthly license", license=True)
    a.add_argument("--years", type=int)
    a.add_argument("--months", type=int)
    a.add_argument("--quantity", type=int, help="at least the current quantity")
    a = action("add-domain", "register a domain on a domain bundle", license=True)
    a.add_argument("domain")
    action("inventory", "purchased, used, available, expiring soon and lapsed")
    a = action("ledger", "the account's ledger movements")
    a.add_argument("--since", type=int, default=0, help="after this ledger sequence number")
    a.add_argument("--limit", type=int, default=1000)
    action("certificates", "the account's live certificates, and those expiring soon")
    action("check", "recompute every balance from the ledger; exit 1 if any differs", account=False)
    action("record-lapses", "write the lapses due by now into the ledger", account=False)
