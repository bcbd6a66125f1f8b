"""Admin API and CLI messages for accounts and licenses (unknown fields refused)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

import msgspec

from core.base.fields import Identifier

_STRICT = {"forbid_unknown_fields": True, "kw_only": True, "frozen": True}

Kind = Literal["pooled", "non_pooled", "domain_bundle", "coupon", "monthly"]
Quantity = Annotated[int, msgspec.Meta(ge=1, le=1_000_000)]
Email = Annotated[
    str, msgspec.Meta(pattern=r"^[^@\s]{1,64}@[^@\s]{1,255}$", description="an email address")
]


class AccountIn(msgspec.Struct, **_STRICT):
    id: Identifier
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    # What the account's plan includes; each one beyond takes a unit of its extras license.
    included_admins: Annotated[int, msgspec.Meta(ge=0, le=10_000)] = 1
    included_orgs: Annotated[int, msgspec.Meta(ge=0, le=10_000)] = 1


class AccountSettingsIn(msgspec.Struct, **_STRICT):
    default_license: Identifier | None = None
    extras_license: Identifier | None = None


class AdminIn(msgspec.Struct, **_STRICT):
    email: Email


CommonName = Annotated[str, msgspec.Meta(min_length=1, max_length=253)]


class LicenseIn(msgspec.Struct, **_STRICT):
    id: Identifier
    kind: Kind
    # pooled: certificates for the term; non_pooled: units; coupon: coupons (5 or more);
    # domain_bundle: licenses (3 domains each); monthly: live certificates at once.
    quantity: Quantity
    # pooled: the term; coupon: the years a coupon pays renewals of one common name
    years: Annotated[int, msgspec.Meta(ge=1, le=5)] | None = None
    months: Annotated[int, msgspec.Meta(ge=1, le=120)] | None = None  # monthly
    # Coupons: the dealer code asked again at redemption, other accounts that may
    # redeem them, and for multi-year coupons the common name whose renewals they pay.
    dealer: Identifier | None = None
    redeemers: list[Identifier] = msgspec.field(default_factory=list)
    common_name: CommonName | None = None


class LicenseAddIn(msgspec.Struct, **_STRICT):
    quantity: Quantity
    years: Annotated[int, msgspec.Meta(ge=1, le=5)] | None = None  # coupon: multi-year
    dealer: Identifier | None = None  # coupons, as LicenseIn
    redeemers: list[Identifier] = msgspec.field(default_factory=list)
    common_name: CommonName | None = None


class LicenseRenewIn(msgspec.Struct, **_STRICT):
    years: Annotated[int, msgspec.Meta(ge=1, le=5)] | None = None
    months: Annotated[int, msgspec.Meta(ge=1, le=120)] | None = None
    quantity: Quantity | None = None  # never below the current


class LicenseDomainIn(msgspec.Struct, **_STRICT):
    domain: Annotated[str, msgspec.Meta(min_length=1, max_length=253)]


class AccountView(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    created_at: dt.datetime
    default_license: str | None
    extras_license: str | None
    included_admins: int
    included_orgs: int
    admins: list[str]
    organizations: list[str]
    licenses: list[str]


class TotalsView(msgspec.Struct, frozen=True, kw_only=True):
    unit: str
    purchased: int
    used: int
    available: int
    expiring_soon: int
    lapsed: int


class LotView(msgspec.Struct, frozen=True, kw_only=True):
    lot: int
    purchased_at: dt.datetime
    lapses_at: dt.datetime
    quantity: int
    used: int
    lapsed: int


class LicenseView(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    account: str
    kind: str
    created_at: dt.datetime
    term_start: dt.datetime | None
    term_end: dt.datetime | None  # the first instant past the term
    term_last_day: dt.date | None  # in the contracts' calendar
    quantity: int
    totals: TotalsView
    lots: list[LotView]
    domains: list[str]
    # The numbers of the coupons just sold: shown in this answer only, kept hashed.
    coupons: list[str] | None = None


class InventoryView(msgspec.Struct, frozen=True, kw_only=True):
    """Pooled (certificate-days) and non-pooled (units) inventory apart, then the other
    kinds, then every license."""

    account: str
    at: dt.datetime
    expiring_soon_days: int
    pooled: TotalsView
    non_pooled: TotalsView
    coupons: TotalsView
    domain_bundles: TotalsView
    monthly: TotalsView
    licenses: list[LicenseView]


class LedgerEntryView(msgspec.Struct, frozen=True, kw_only=True):
    seq: int
    at: dt.datetime
    account: str
    license: str
    movement: str
    amount: int
    unit: str
    actor: str
    lot: int | None = None
    serial: str | None = None
    item: str | None = None
    term_end: dt.datetime | None = None
    quantity: int | None = None
    note: str | None = None


class LedgerView(msgspec.Struct, frozen=True, kw_only=True):
    account: str
    entries: list[LedgerEntryView]
    next_since: int  # pass as ?since= for the next page


class CertSummary(msgspec.Struct, frozen=True, kw_only=True):
    serial: str
    organization: str
    profile: str
    names: list[str]
    status: Literal["good", "revoked"]
    not_before: dt.datetime
    not_after: dt.datetime
    license: str | None
    days_left: int


class AccountCertificates(msgspec.Struct, frozen=True, kw_only=True):
    account: str
    at: dt.datetime
    certificates: list[CertSummary]  # every certificate not yet expired, soonest first
    expiring_in_30_days: list[str]  # serials of good ones
    expiring_in_10_days: list[str]


class CheckView(msgspec.Struct, frozen=True, kw_only=True):
    ok: bool
    licenses: int
    ledger_entries: int
    problems: list[str]


SCHEMA_TYPES = (
    AccountIn,
    AccountSettingsIn,
    AdminIn,
    LicenseIn,
    LicenseAddIn,
    LicenseRenewIn,
    LicenseDomainIn,
    AccountView,
    LicenseView,
    InventoryView,
    LedgerView,
    AccountCertificates,
    CheckView,
)
