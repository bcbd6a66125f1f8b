"""What an operator does with accounts and licenses, for the admin API and the CLI alike.

Changes come back as write ops (`Callable[[WriteTxn], T]`): the API hands them to the
group-commit writer, the CLI to `Store.write`; either way the answer is given after the
commit. Views read one snapshot.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import msgspec

from core.base.clock import Clock, epoch_us, from_epoch, to_epoch
from core.base.dnsnames import normalize_dns_name
from core.base.errors import PolicyError
from core.licenses import balances, book, books_check, plans, policy, terms
from core.licenses import messages as lm
from core.store import (
    AccountRecord,
    CertStatus,
    LedgerEntry,
    LicenseRecord,
    OrgRecord,
    ReadTxn,
    WriteTxn,
)

T = TypeVar("T")
Op = Callable[[WriteTxn], T]
_SECTIONS = {
    "pooled": "pooled",
    "non_pooled": "non_pooled",
    "coupon": "coupons",
    "domain_bundle": "domain_bundles",
    "monthly": "monthly",
}
_SECTION_UNITS = {
    "pooled": "cert-days",
    "non_pooled": "units",
    "coupons": "coupons",
    "domain_bundles": "domains",
    "monthly": "live certificates",
}


class LicenseDesk:
    def __init__(self, settings: book.Settings, clock: Clock) -> None:
        self._settings = settings
        self._clock = clock

    def _now(self) -> int:
        return to_epoch(self._clock.now())

    # -- changes ------------------------------------------------------------------------

    def create_account(self, body: lm.AccountIn, *, actor: str) -> Op[lm.AccountView]:
        now = self._now()
        rec = AccountRecord(
            id=body.id,
            name=body.name,
            created_at=now,
            included_admins=body.included_admins,
            included_orgs=body.included_orgs,
        )

        def op(txn: WriteTxn) -> lm.AccountView:
            book.create_account(txn, rec, at_us=epoch_us(now), actor=actor)
            return self.account_view(txn, rec.id)

        return op

    def configure(
        self, account: str, body: lm.AccountSettingsIn, *, actor: str
    ) -> Op[lm.AccountView]:
        now = self._now()

        def op(txn: WriteTxn) -> lm.AccountView:
            acct = plans.account_of(txn, account)
            for value in (body.default_license, body.extras_license):
                if value is not None:
                    book.owned(txn, account, value, now, actor)
            acct = msgspec.structs.replace(
                acct,
                default_license=body.default_license or acct.default_license,
                extras_license=body.extras_license or acct.extras_license,
            )
            detail = {"default": acct.default_license, "extras": acct.extras_license}
            book.save_account(txn, acct, "account.configure", detail, now=now, actor=actor)
            return self.account_view(txn, account)

        return op

    def add_admin(self, account: str, body: lm.AdminIn, *, actor: str) -> Op[lm.AccountView]:
        now = self._now()

        def op(txn: WriteTxn) -> lm.AccountView:
            book.add_admin(txn, account, body.email.lower(), now=now, actor=actor)
            return self.account_view(txn, account)

        return op

    def remove_admin(self, account: str, email: str, *, actor: str) -> Op[lm.AccountView]:
        now = self._now()

        def op(txn: WriteTxn) -> lm.AccountView:
            book.remove_admin(txn, account, email.lower(), now=now, actor=actor)
            return self.account_view(txn, account)

        return op

    def attach_org(self, org: OrgRecord, *, actor: str) -> Op[OrgRecord]:
        """Record an organization; one under an account goes through the account's rules
        (extra organizations, sub-organizations)."""
        now = self._now()

        def op(txn: WriteTxn) -> OrgRecord:
            rec = org
            if rec.account:
                rec = book.attach_org(txn, rec, now=now, actor=actor)
                if rec.parent:
                    parent = txn.get_org(rec.parent)
                    if parent is not None:  # its validation is the parent's
                        rec = msgspec.structs.replace(rec, validated_at=parent.validated_at)
            else:
                existing = txn.get_org(rec.id)
                if existing is not None and existing.account:
                    rec = msgspec.structs.replace(
                        rec, account=existing.account, parent=existing.parent
                    )
            txn.put_org(rec, at_us=epoch_us(now), actor=actor)
            return rec

        return op

    def buy(self, account: str, body: lm.LicenseIn, *, actor: str) -> Op[lm.LicenseView]:
        now = self._now()

        def op(txn: WriteTxn) -> lm.LicenseView:
            _coupon_terms_only_for_coupons(body.kind, body)
            lic = book.buy(
                txn,
                account,
                body.id,
                body.kind,
                quantity=body.quantity,
                years=None if body.kind == "coupon" else body.years,
                months=body.months,
                now=now,
                settings=self._settings,
                actor=actor,
            )
            view = self.license_view(txn, lic, now)
            if lic.kind != "coupon":
                return view
            numbers = book.sell_coupons(txn, lic, body, years=body.years)
            return msgspec.structs.replace(view, coupons=numbers)

        return op

    def add(
        self, account: str, license_id: str, body: lm.LicenseAddIn, *, actor: str
    ) -> Op[lm.LicenseView]:
        now = self._now()

        def op(txn: WriteTxn) -> lm.LicenseView:
            lic = book.owned(txn, account, license_id, now, actor)
            _coupon_terms_only_for_coupons(lic.kind, body)
            change = policy.add(lic, quantity=body.quantity, now=now, offset=self._settings.offset)
            lic = book.apply(txn, change, actor=actor)
            view = self.license_view(txn, lic, now)
            if lic.kind != "coupon":
                return view
            numbers = book.sell_coupons(txn, lic, body, years=body.years)
            return msgspec.structs.replace(view, coupons=numbers)

        return op

    def renew(
        self, account: str, license_id: str, body: lm.LicenseRenewIn, *, actor: str
    ) -> Op[lm.LicenseView]:
        return self._change(
            account,
            license_id,
            lambda lic, now: policy.renew(
                lic,
                now=now,
                offset=self._settings.offset,
                years=body.years,
                months=body.months,
                quantity=body.quantity,
            ),
            actor=actor,
        )

    def add_domain(
        self, account: str, license_id: str, body: lm.LicenseDomainIn, *, actor: str
    ) -> Op[lm.LicenseView]:
        domain = normalize_dns_name(body.domain, allow_wildcard=False)
        return self._change(
            account,
            license_id,
            lambda lic, now: policy.add_domain(lic, domain, now=now, offset=self._settings.offset),
            actor=actor,
        )

    def _change(
        self,
        account: str,
        license_id: str,
        change: Callable[[LicenseRecord, int], policy.Outcome],
        *,
        actor: str,
    ) -> Op[lm.LicenseView]:
        now = self._now()

        def op(txn: WriteTxn) -> lm.LicenseView:
            lic = book.owned(txn, account, license_id, now, actor)
            lic = book.apply(txn, change(lic, now), actor=actor)
            return self.license_view(txn, lic, now)

        return op

    def sweep(self) -> Op[int]:
        now = self._now()
        return lambda txn: book.sweep_lapses(txn, now)

    # -- views --------------------------------------------------------------------------

    def account_view(self, read: ReadTxn, account: str) -> lm.AccountView:
        acct = plans.account_of(read, account)
        return lm.AccountView(
            id=acct.id,
            name=acct.name,
            created_at=from_epoch(acct.created_at),
            default_license=acct.default_license or None,
            extras_license=acct.extras_license or None,
            included_admins=acct.included_admins,
            included_orgs=acct.included_orgs,
            admins=list(acct.admins),
            organizations=list(acct.orgs),
            licenses=[lic.id for lic in read.iter_licenses(account)],
        )

    def accounts(self, read: ReadTxn) -> list[lm.AccountView]:
        return [self.account_view(read, a.id) for a in read.iter_accounts()]

    def license_view(self, read: ReadTxn, lic: LicenseRecord, now: int) -> lm.LicenseView:
        live = read.count_live(lic.id, now) if lic.kind == "monthly" else 0
        t = balances.totals(lic, now=now, soon=self._settings.expiring_soon, live=live)
        shown = policy.lapse(lic, now).license
        termed = lic.kind in policy.TERM_KINDS
        return lm.LicenseView(
            id=lic.id,
            account=lic.account,
            kind=lic.kind,
            created_at=from_epoch(lic.created_at),
            term_start=from_epoch(lic.start) if termed else None,
            term_end=from_epoch(lic.end) if termed else None,
            term_last_day=terms.last_day(lic.end, self._settings.offset) if termed else None,
            quantity=lic.quantity,
            totals=_totals_view(t, _SECTION_UNITS[_SECTIONS[lic.kind]]),
            lots=[
                lm.LotView(
                    lot=lot.seq,
                    purchased_at=from_epoch(lot.at),
                    lapses_at=from_epoch(lot.expires),
                    quantity=lot.quantity,
                    used=lot.used,
                    lapsed=lot.lapsed,
                )
                for lot in shown.lots
            ],
            domains=list(lic.domains),
        )

    def license(self, read: ReadTxn, account: str, license_id: str) -> lm.LicenseView:
        lic = read.get_license(license_id)
        if lic is None or lic.account != account:
            raise PolicyError("license_unknown", f"account {account} has no license {license_id!r}")
        return self.license_view(read, lic, self._now())

    def inventory(self, read: ReadTxn, account: str) -> lm.InventoryView:
        plans.account_of(read, account)
        now = self._now()
        views = [self.license_view(read, lic, now) for lic in read.iter_licenses(account)]
        sums = {section: balances.Totals() for section in _SECTION_UNITS}
        for v in views:
            t = v.totals
            section = _SECTIONS[v.kind]
            sums[section] = sums[section] + balances.Totals(
                t.purchased, t.used, t.available, t.expiring_soon, t.lapsed
            )
        s = {k: _totals_view(v, _SECTION_UNITS[k]) for k, v in sums.items()}
        return lm.InventoryView(
            account=account,
            at=from_epoch(now),
            expiring_soon_days=self._settings.expiring_soon // terms.DAY,
            pooled=s["pooled"],
            non_pooled=s["non_pooled"],
            coupons=s["coupons"],
            domain_bundles=s["domain_bundles"],
            monthly=s["monthly"],
            licenses=views,
        )

    def ledger(
        self, read: ReadTxn, account: str, *, since: int = 0, limit: int = 1000
    ) -> lm.LedgerView:
        plans.account_of(read, account)
        kinds = {lic.id: lic.kind for lic in read.iter_licenses(account)}
        entries: list[lm.LedgerEntryView] = []
        last = since
        for e in read.iter_ledger(account=account, since=since + 1 if since else 0):
            if len(entries) >= limit:
                break
            entries.append(_entry_view(e, kinds.get(e.license, "")))
            last = e.seq
        return lm.LedgerView(account=account, entries=entries, next_since=last)

    def certificates(self, read: ReadTxn, account: str) -> lm.AccountCertificates:
        plans.account_of(read, account)
        now = self._now()
        found: list[lm.CertSummary] = []
        soon30: list[str] = []
        soon10: list[str] = []
        for serial in read.iter_account_certs(account, expiring_after=now):
            cert = read.get_cert(serial)
            if cert is None:
                continue
            good = cert.status is CertStatus.GOOD
            left = cert.not_after - now
            found.append(
                lm.CertSummary(
                    serial=cert.serial.hex(),
                    organization=cert.organization,
                    profile=cert.profile,
                    names=list(cert.names),
                    status="good" if good else "revoked",
                    not_before=from_epoch(cert.not_before),
                    not_after=from_epoch(cert.not_after),
                    license=cert.license or None,
                    days_left=left // terms.DAY,
                )
            )
            if good and left <= 30 * terms.DAY:
                soon30.append(cert.serial.hex())
                if left <= 10 * terms.DAY:
                    soon10.append(cert.serial.hex())
        return lm.AccountCertificates(
            account=account,
            at=from_epoch(now),
            certificates=found,
            expiring_in_30_days=soon30,
            expiring_in_10_days=soon10,
        )

    def check(self, read: ReadTxn) -> lm.CheckView:
        problems = books_check.check(read)
        return lm.CheckView(
            ok=not problems,
            licenses=sum(1 for _ in read.iter_licenses()),
            ledger_entries=read.counter("ledger"),
            problems=problems,
        )


def _coupon_terms_only_for_coupons(kind: str, body: lm.LicenseIn | lm.LicenseAddIn) -> None:
    given = body.dealer or body.redeemers or body.common_name
    if kind != "coupon" and (given or (isinstance(body, lm.LicenseAddIn) and body.years)):
        raise PolicyError(
            "license_terms_invalid",
            "dealer, redeemers, common_name (and years on an add) are for coupon licenses",
        )


def _totals_view(t: balances.Totals, unit: str) -> lm.TotalsView:
    return lm.TotalsView(
        unit=unit,
        purchased=t.purchased,
        used=t.used,
        available=t.available,
        expiring_soon=t.expiring_soon,
        lapsed=t.lapsed,
    )


def _entry_view(e: LedgerEntry, kind: str) -> lm.LedgerEntryView:
    unit = policy.UNIT_NAMES.get(kind, "")
    if e.movement == "domain":
        unit = "domains"
    return lm.LedgerEntryView(
        seq=e.seq,
        at=from_epoch(e.at),
        account=e.account,
        license=e.license,
        movement=e.movement,
        amount=e.amount,
        unit=unit,
        actor=e.actor,
        lot=e.lot or None,
        serial=e.serial or None,
        item=e.item or None,
        term_end=from_epoch(e.term_end) if e.term_end else None,
        quantity=e.quantity or None,
        note=e.note or None,
    )
