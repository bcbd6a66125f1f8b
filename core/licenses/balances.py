"""A license's ledger as the truth, and its inventory as an operator reads it. Pure.

`derive` folds a license's ledger back into the balances, which is how the check command
proves the cached ones; `totals` is the inventory view at a given time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import msgspec

from core.licenses.policy import DOMAINS_PER_BUNDLE, TERM_KINDS, UNIT_KINDS, lapse
from core.store.records import LedgerEntry, LicenseRecord, Lot


def derive(base: LicenseRecord, entries: Iterable[LedgerEntry]) -> LicenseRecord:
    """The license's balances recomputed from its ledger alone (identity and kind from
    `base`). The check command compares this with the cached record."""
    lic = LicenseRecord(
        id=base.id,
        account=base.account,
        kind=base.kind,
        created_at=base.created_at,
        start=base.start,
    )
    lots: dict[int, Lot] = {}
    quantity = balance = consumed = returned = lapsed = end = 0
    domains: list[str] = []
    for e in entries:
        if e.movement in ("purchase", "add", "renew"):
            quantity += e.quantity
            if e.term_end and lic.kind in TERM_KINDS:
                end = e.term_end
            if lic.kind in UNIT_KINDS:
                lots[e.lot] = Lot(seq=e.lot, at=e.at, expires=e.term_end, quantity=e.amount)
        if lic.kind == "pooled":
            balance += e.amount
        if e.movement in ("consume", "reserve", "unreserve"):
            consumed -= e.amount
            if e.lot in lots:
                lots[e.lot] = msgspec.structs.replace(lots[e.lot], used=lots[e.lot].used - e.amount)
        elif e.movement == "lapse":
            lapsed -= e.amount
            if e.lot in lots:
                lot = lots[e.lot]
                lots[e.lot] = msgspec.structs.replace(lot, lapsed=lot.lapsed - e.amount)
        elif e.movement == "return":
            returned += e.amount
        elif e.movement == "domain":
            domains.append(e.note)
    return msgspec.structs.replace(
        lic,
        end=end,
        quantity=quantity,
        balance=balance,
        consumed=consumed,
        returned=returned,
        lapsed=lapsed,
        lots=[lots[k] for k in sorted(lots)],
        domains=domains,
    )


def differences(cached: LicenseRecord, derived: LicenseRecord) -> list[str]:
    """The fields where the cached balances disagree with the ledger."""
    out = []
    names = ("end", "quantity", "balance", "consumed", "returned", "lapsed", "lots", "domains")
    for name in names:
        have, want = getattr(cached, name), getattr(derived, name)
        if have != want:
            out.append(f"{name}: cached {have!r}, ledger says {want!r}")
    return out


@dataclass(frozen=True)
class Totals:
    """One license's inventory in its own unit, as an operator reads it at `now`."""

    purchased: int = 0
    used: int = 0
    available: int = 0
    expiring_soon: int = 0  # available now, gone within the "soon" window
    lapsed: int = 0  # recorded lapses plus those due and not yet recorded

    def __add__(self, other: Totals) -> Totals:
        return Totals(
            self.purchased + other.purchased,
            self.used + other.used,
            self.available + other.available,
            self.expiring_soon + other.expiring_soon,
            self.lapsed + other.lapsed,
        )


def totals(lic: LicenseRecord, *, now: int, soon: int, live: int = 0) -> Totals:
    """Purchased, used, available, expiring soon and lapsed, without writing: what is
    due to lapse counts as lapsed already."""
    lic = lapse(lic, now).license
    if lic.kind in UNIT_KINDS:
        purchased = sum(lot.quantity for lot in lic.lots)
        left = [(lot.quantity - lot.used - lot.lapsed, lot.expires) for lot in lic.lots]
        return Totals(
            purchased=purchased,
            used=sum(lot.used for lot in lic.lots),
            available=sum(n for n, _ in left),
            expiring_soon=sum(n for n, expires in left if expires - now <= soon),
            lapsed=lic.lapsed,
        )
    in_term = now < lic.end
    ending = in_term and lic.end - now <= soon
    if lic.kind == "pooled":
        used = lic.consumed - lic.returned
        return Totals(
            purchased=lic.balance + used + lic.lapsed,
            used=used,
            available=lic.balance,
            expiring_soon=lic.balance if ending else 0,
            lapsed=lic.lapsed,
        )
    if lic.kind == "domain_bundle":  # in domains: 3 per license
        room = lic.quantity * DOMAINS_PER_BUNDLE
        free = room - len(lic.domains) if in_term else 0
        return Totals(
            purchased=room,
            used=len(lic.domains),
            available=free,
            expiring_soon=room if ending else 0,
            lapsed=0 if in_term else room,
        )
    free = max(0, lic.quantity - live) if in_term else 0  # monthly: live slots
    return Totals(
        purchased=lic.quantity,
        used=live,
        available=free,
        expiring_soon=lic.quantity if ending else 0,
        lapsed=0 if in_term else lic.quantity,
    )
