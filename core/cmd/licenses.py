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
from core.cmd import notify
from core.cmd.common import Parser, add_config, config

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


def _coupon_args(a: argparse.Namespace) -> dict[str, Any]:
    return {
        "dealer": a.dealer,
        "redeemers": [r for r in (a.redeemers or "").split(",") if r],
        "common_name": a.common_name,
    }


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
    if v.coupons:
        lines.append("  coupon numbers (shown this once; keep them: they are not stored):")
        lines += [f"    {number}" for number in v.coupons]
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


def _check_lines(r: Any) -> list[str]:
    return [
        *r.problems,
        f"{r.licenses} licenses, {r.ledger_entries} ledger entries:"
        f" {'the books balance' if r.ok else 'PROBLEMS FOUND'}",
    ]


Lines = Callable[[Any], list[str]]
# action -> (what it reads in a snapshot, how it is printed)
_READ_ACTIONS: dict[str, tuple[Callable[[Any, Any, argparse.Namespace], Any], Lines]] = {
    "inventory": (lambda desk, txn, a: desk.inventory(txn, a.account), _inventory_lines),
    "show": (lambda desk, txn, a: desk.account_view(txn, a.account), _account_lines),
    "ledger": (
        lambda desk, txn, a: desk.ledger(txn, a.account, since=a.since, limit=a.limit),
        _ledger_lines,
    ),
    "certificates": (lambda desk, txn, a: desk.certificates(txn, a.account), _certificates_lines),
    "check": (lambda desk, txn, a: desk.check(txn), _check_lines),
}


def _write_op(desk: Any, a: argparse.Namespace) -> tuple[Callable[[Any], Any], Lines]:
    """The store write an action makes (inputs typed first: same limits as the API)."""
    from core.licenses import messages as lm

    action = a.licenses_cmd
    if action == "create-account":
        body = _typed(
            lm.AccountIn,
            id=a.account,
            name=a.name,
            included_admins=a.included_admins,
            included_orgs=a.included_orgs,
        )
        return desk.create_account(body, actor="cli"), _account_lines
    if action == "configure":
        settings = _typed(
            lm.AccountSettingsIn, default_license=a.default_license, extras_license=a.extras_license
        )
        return desk.configure(a.account, settings, actor="cli"), _account_lines
    if action == "add-admin":
        admin = _typed(lm.AdminIn, email=a.email)
        return desk.add_admin(a.account, admin, actor="cli"), _account_lines
    if action == "remove-admin":
        return desk.remove_admin(a.account, a.email, actor="cli"), _account_lines
    return _license_write_op(desk, a)


def _license_write_op(desk: Any, a: argparse.Namespace) -> tuple[Callable[[Any], Any], Lines]:
    from core.licenses import messages as lm

    action = a.licenses_cmd
    if action == "buy":
        lic = _typed(
            lm.LicenseIn,
            id=a.license,
            kind=a.kind,
            quantity=a.quantity,
            years=a.years,
            months=a.months,
            **_coupon_args(a),
        )
        return desk.buy(a.account, lic, actor="cli"), _license_lines
    if action == "add":
        more = _typed(lm.LicenseAddIn, quantity=a.quantity, years=a.years, **_coupon_args(a))
        return desk.add(a.account, a.license, more, actor="cli"), _license_lines
    if action == "renew":
        renewal = _typed(lm.LicenseRenewIn, years=a.years, months=a.months, quantity=a.quantity)
        return desk.renew(a.account, a.license, renewal, actor="cli"), _license_lines
    if action == "add-domain":
        dom = _typed(lm.LicenseDomainIn, domain=a.domain)
        return desk.add_domain(a.account, a.license, dom, actor="cli"), _license_lines
    # record-lapses
    sweep = desk.sweep()
    return (
        lambda txn: {"lapses_recorded": sweep(txn)},
        lambda d: [f"{d['lapses_recorded']} lapses recorded"],
    )


def _coupon_options(a: argparse.ArgumentParser) -> None:
    a.add_argument("--dealer", help="coupon: the dealer code, asked again when redeeming")
    a.add_argument("--redeemers", help="coupon: other accounts that may redeem them (a,b)")
    a.add_argument("--common-name", help="coupon with --years: the name whose renewals it pays")


def run(args: argparse.Namespace) -> int:
    from core.base.clock import SystemClock
    from core.cmd.wiring import license_settings
    from core.licenses.desk import LicenseDesk
    from core.store.configured import open_store

    cfg = config(args)
    desk = LicenseDesk(license_settings(cfg), SystemClock())
    action = args.licenses_cmd
    read = _READ_ACTIONS.get(action)
    with open_store(cfg, readonly=read is not None) as store:
        if read is not None:
            fetch, lines = read
            with store.read() as txn:
                view = fetch(desk, txn, args)
            _emit(args, view, lines)
            return 1 if action == "check" and not view.ok else 0
        op, lines = _write_op(desk, args)
        _emit(args, store.write(op), lines)
    return 0


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
    a.add_argument(
        "--years", type=int, help="pooled: the term, 1 to 5; coupon: renewals paid, 2 to 5"
    )
    a.add_argument("--months", type=int, help="monthly: months paid")
    _coupon_options(a)
    a = action("add", "add to a license (never reduce)", license=True)
    a.add_argument("--quantity", type=int, required=True)
    a.add_argument("--years", type=int, help="coupon: renewals of one common name paid, 2 to 5")
    _coupon_options(a)
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
    notify.register_webhook(lic)
