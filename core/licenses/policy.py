"""What each kind of license allows, and what buying, renewing and time move. Pure.
What issuance and release take and give back is core/licenses/charging.py.

Every function takes a license and the time, and returns the license as it becomes and
the ledger movements that explain the change (`Outcome`), or raises a PolicyError with a
stable code and nothing changed. core/licenses/book.py applies outcomes inside store
transactions; `derive` folds a license's ledger back into the balances, which is how the
check command proves the cached ones.

Kinds (the seed products' licences, docs/architecture.md "Licences"):
- pooled: certificate-days for a 1-5 year term; an issuance takes its validity, an early
  release returns whole days left; what is unused at the term's end lapses.
- non_pooled: lots of units, each usable for a year from purchase, oldest first, one
  certificate each, never returned.
- coupon: like non_pooled, bought 5 or more at a time, each unit with a number
  redeemed once (core/licenses/coupons.py); a coupon's certificate is reissued free
  like any other, and a multi-year coupon pays the renewals of one common name.
- domain_bundle: 3 domains per license, unlimited certificates within them during the
  term (to the end of the same month a year later); renewals continue from the old end.
- monthly: at most `quantity` live certificates during the paid months.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import msgspec

from core.base.errors import PolicyError
from core.config import LICENSE_KINDS
from core.licenses import terms
from core.store.records import LicenseRecord, Lot

KINDS: tuple[str, ...] = LICENSE_KINDS
UNIT_KINDS = frozenset({"non_pooled", "coupon"})
TERM_KINDS = frozenset({"pooled", "domain_bundle", "monthly"})
# Kinds whose certificates each carry a charge (a ledger "consume" names them).
CHARGING_KINDS = frozenset({"pooled", "non_pooled", "coupon"})
Operation = Literal["new", "renewal", "reissue"]

DOMAINS_PER_BUNDLE = 3
MIN_COUPONS = 5
POOLED_YEARS = (1, 5)
MAX_QUANTITY = 1_000_000
MAX_MONTHS = 120

UNIT_NAMES: dict[str, str] = {
    "pooled": "cert-days",
    "non_pooled": "units",
    "coupon": "coupons",
    "domain_bundle": "licenses",
    "monthly": "live certificates",
}


@dataclass(frozen=True)
class Move:
    """A ledger movement before the store gives it a sequence number and a time."""

    movement: str
    amount: int
    at: int
    lot: int = 0
    serial: str = ""
    item: str = ""
    term_end: int = 0
    quantity: int = 0
    note: str = ""


@dataclass(frozen=True)
class Outcome:
    license: LicenseRecord
    moves: list[Move] = field(default_factory=list)
    charged: int = 0  # what an issuance took (cert-days, units)
    lot: int = 0  # the lot it came from (unit kinds)


def _refuse(code: str, message: str) -> PolicyError:
    return PolicyError(code, message)


def _quantity(quantity: int, what: str = "quantity") -> None:
    if not 1 <= quantity <= MAX_QUANTITY:
        raise _refuse("license_quantity_invalid", f"{what} must be 1 to {MAX_QUANTITY}")


# -- buying -------------------------------------------------------------------------


def purchase(
    license_id: str,
    account: str,
    kind: str,
    *,
    quantity: int,
    now: int,
    offset: int,
    years: int | None = None,
    months: int | None = None,
) -> Outcome:
    """A new license. `quantity` counts certificates (pooled), units, coupons,
    bundle licenses or live certificates (monthly); pooled takes `years`, monthly
    `months`."""
    if kind not in KINDS:
        raise _refuse("license_kind_unknown", f"no license kind {kind!r} ({', '.join(KINDS)})")
    _quantity(quantity)
    lic = LicenseRecord(id=license_id, account=account, kind=kind, created_at=now)
    return _credit(
        lic, "purchase", quantity=quantity, now=now, offset=offset, years=years, months=months
    )


def add(lic: LicenseRecord, *, quantity: int, now: int, offset: int) -> Outcome:
    """More of the same license: more certificates for the rest of a pooled term, a new
    lot of units or coupons, more bundle licenses, a higher monthly limit."""
    _quantity(quantity)
    if lic.kind in TERM_KINDS and now >= lic.end:
        raise _refuse(
            "license_expired",
            f"license {lic.id}'s term ended on {terms.last_day(lic.end, offset)}: renew it first",
        )
    return _credit(lic, "add", quantity=quantity, now=now, offset=offset)


def renew(
    lic: LicenseRecord,
    *,
    now: int,
    offset: int,
    years: int | None = None,
    months: int | None = None,
    quantity: int | None = None,
) -> Outcome:
    """A new term. A bundle's runs from the old end even when renewed late; a pooled or
    monthly term renewed before its end runs on from it, after it from now. A renewal
    may raise the quantity, never lower it."""
    if lic.kind not in TERM_KINDS:
        raise _refuse(
            "license_not_renewable",
            f"{lic.kind} licenses are not renewed: buy more with an add",
        )
    if quantity is not None and quantity < lic.quantity:
        raise _refuse(
            "license_reduction",
            f"licenses are never reduced: {quantity} is below the current {lic.quantity}",
        )
    return _credit(
        lic,
        "renew",
        quantity=quantity or lic.quantity,
        now=now,
        offset=offset,
        years=years,
        months=months,
    )


def _check_terms(
    kind: str, movement: str, *, quantity: int, years: int | None, months: int | None
) -> None:
    """The term a purchase or renewal names must fit its kind; an `add` names none."""
    if kind == "pooled" and movement != "add":
        lo, hi = POOLED_YEARS
        if years is None or not lo <= years <= hi:
            raise _refuse("license_term_invalid", f"a pooled term is {lo} to {hi} years")
    elif years is not None and kind != "coupon":  # a coupon's years: renewals it pays
        raise _refuse("license_term_invalid", f"{kind} licenses do not take years")
    if kind == "monthly" and movement != "add":
        if months is None or not 1 <= months <= MAX_MONTHS:
            raise _refuse("license_term_invalid", f"a monthly plan runs 1 to {MAX_MONTHS} months")
    elif months is not None:
        raise _refuse("license_term_invalid", f"{kind} licenses do not take months")
    if kind == "coupon" and quantity < MIN_COUPONS:
        raise _refuse("license_quantity_invalid", f"coupons are sold {MIN_COUPONS} or more")


def _new_term(
    lic: LicenseRecord,
    movement: str,
    *,
    now: int,
    offset: int,
    years: int | None,
    months: int | None,
) -> tuple[int, int, int]:
    """(start, end, from) of the term a purchase or renewal makes: `from` is where the
    paid time begins (the old end, for a continuation)."""
    kind = lic.kind
    if movement == "purchase":
        start = term_from = now
    elif kind == "domain_bundle" or now < lic.end:
        start, term_from = lic.start, lic.end  # a continuation
    else:
        start = term_from = now  # a late pooled or monthly renewal: a new term
    if kind == "domain_bundle":
        # A renewal's year starts on the old last day: 2015-05-31 -> 2016-05-31.
        end = terms.end_of_month_after_year(
            term_from - 1 if movement == "renew" else term_from, offset
        )
    elif kind == "pooled":
        end = terms.add_years(term_from, years or 0, offset)
    else:
        end = terms.add_months(term_from, months or 0, offset)
    return start, end, term_from


def _credit(
    lic: LicenseRecord,
    movement: str,
    *,
    quantity: int,
    now: int,
    offset: int,
    years: int | None = None,
    months: int | None = None,
) -> Outcome:
    kind = lic.kind
    _check_terms(kind, movement, quantity=quantity, years=years, months=months)
    if kind in UNIT_KINDS:
        lot = Lot(
            seq=len(lic.lots) + 1,
            at=now,
            expires=terms.add_years(now, 1, offset),
            quantity=quantity,
        )
        move = Move(movement, quantity, now, lot=lot.seq, term_end=lot.expires, quantity=quantity)
        new = msgspec.structs.replace(lic, lots=[*lic.lots, lot], quantity=lic.quantity + quantity)
        return Outcome(new, [move])

    if movement == "add":
        start, end = lic.start, lic.end
        days = terms.whole_days(end - now) if kind == "pooled" else 0
        total = lic.quantity + quantity
    else:
        start, end, term_from = _new_term(
            lic, movement, now=now, offset=offset, years=years, months=months
        )
        days = terms.whole_days(end - term_from) if kind == "pooled" else 0
        total = quantity
    grown = total - lic.quantity
    if kind == "pooled":
        # New certificates for the rest of the term, or every certificate for a new term.
        credit = (quantity if movement == "add" else total) * days
        move = Move(movement, credit, now, term_end=end, quantity=grown)
        new = msgspec.structs.replace(
            lic, start=start, end=end, quantity=total, balance=lic.balance + credit
        )
    else:
        move = Move(movement, grown, now, term_end=end, quantity=grown)
        new = msgspec.structs.replace(lic, start=start, end=end, quantity=total)
    return Outcome(new, [move])


def add_domain(lic: LicenseRecord, domain: str, *, now: int, offset: int) -> Outcome:
    """Register a domain on a bundle: 3 per license, during the term."""
    if lic.kind != "domain_bundle":
        raise _refuse("license_wrong_kind", f"only domain bundles register domains, not {lic.kind}")
    if now >= lic.end:
        raise _refuse(
            "license_expired", f"license {lic.id}'s term ended on {terms.last_day(lic.end, offset)}"
        )
    if domain in lic.domains:
        return Outcome(lic)
    room = lic.quantity * DOMAINS_PER_BUNDLE
    if len(lic.domains) >= room:
        raise _refuse(
            "license_exhausted",
            f"license {lic.id} already registers {room} domains ({DOMAINS_PER_BUNDLE} per"
            f" license, {lic.quantity} licenses): add a license",
        )
    return Outcome(
        msgspec.structs.replace(lic, domains=[*lic.domains, domain]),
        [Move("domain", 0, now, note=domain)],
    )


# -- time passing ---------------------------------------------------------------------


def lapse(lic: LicenseRecord, now: int) -> Outcome:
    """Record what the passing of time took: unused units of lots a year old, and the
    unused certificate-days of a pooled term that ended. Each lapse is dated when it
    happened, not when it is recorded."""
    moves: list[Move] = []
    if lic.kind in UNIT_KINDS:
        lots = []
        for lot in lic.lots:
            left = lot.quantity - lot.used - lot.lapsed
            if left > 0 and now >= lot.expires:
                moves.append(Move("lapse", -left, lot.expires, lot=lot.seq))
                lots.append(msgspec.structs.replace(lot, lapsed=lot.lapsed + left))
            else:
                lots.append(lot)
        if moves:
            gone = -sum(m.amount for m in moves)
            return Outcome(msgspec.structs.replace(lic, lots=lots, lapsed=lic.lapsed + gone), moves)
    elif lic.kind == "pooled" and lic.balance > 0 and lic.end and now >= lic.end:
        moves.append(Move("lapse", -lic.balance, lic.end))
        return Outcome(
            msgspec.structs.replace(lic, balance=0, lapsed=lic.lapsed + lic.balance), moves
        )
    return Outcome(lic)
