"""Requests and answers of the signing RPC, as msgspec Structs (unknown fields refused).

The published JSON Schema is generated from these types (see core/api/rpc.py)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

import msgspec

from core.base.fields import CouponNumber, Identifier, SerialHex
from core.base.reasons import ReasonName

_STRICT = {"forbid_unknown_fields": True, "kw_only": True, "frozen": True}


class IssueRequest(msgspec.Struct, **_STRICT):
    csr: Annotated[str, msgspec.Meta(max_length=65536, description="PEM or base64 DER CSR")]
    profile: str
    organization: str
    validity_days: Annotated[int, msgspec.Meta(ge=1, le=3650)] | None = None
    renewal_of: SerialHex | None = None
    reissue_of: SerialHex | None = None
    idempotency_key: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None
    # The license that pays; default: the account's. A reissue stays on its original's.
    license: Identifier | None = None
    # The www / bare-domain pair: None as the profile says (`www_pair`), false never
    # (ACME orders get exactly the names ordered).
    www_pair: bool | None = None
    # A coupon's number pays (with the dealer code it was sold with, when it has one);
    # given when applying, new or renewal, never attached to a certificate afterwards.
    coupon: CouponNumber | None = None
    dealer: Identifier | None = None


class ScheduledRenewalView(msgspec.Struct, frozen=True, kw_only=True):
    """A renewal accepted before its profile's issue window opens: issued then by the
    service (webhook certificate.issued), its licence charge held meanwhile."""

    id: str
    status: str  # scheduled, issued, cancelled, failed
    renewal_of: str
    issue_at: dt.datetime
    organization: str
    license: str | None = None
    reserved: int = 0  # what is held: certificate-days (pooled) or units
    serial: str | None = None  # once issued
    error: str | None = None  # why it failed


class IssueResult(msgspec.Struct, frozen=True, kw_only=True):
    serial: str
    certificate: str
    chain: str
    not_before: dt.datetime
    not_after: dt.datetime
    license: str | None = None
    # What it took from the license: certificate-days (pooled) or units (non-pooled,
    # coupons); 0 for bundles, monthly plans and reissues.
    charged: int = 0
    # Something the customer should know that did not stop issuance: why the www /
    # bare-domain pair was not added.
    notice: str | None = None


class BatchIssueRequest(msgspec.Struct, **_STRICT):
    requests: Annotated[list[IssueRequest], msgspec.Meta(min_length=1, max_length=1000)]


class ItemError(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    error: str
    detail: str
    # ct_unavailable: the precertificate's serial, answered for and revocable
    serial: str | None = None
    kind: str | None = None
    # caa_forbidden: the name, where its CAA record set was, and the records
    name: str | None = None
    found_at: str | None = None
    records: str | None = None


class BatchItem(msgspec.Struct, frozen=True, kw_only=True):
    result: IssueResult | None = None
    scheduled: ScheduledRenewalView | None = None
    error: ItemError | None = None


class BatchIssueResult(msgspec.Struct, frozen=True, kw_only=True):
    results: list[BatchItem]


class RevokeRequest(msgspec.Struct, **_STRICT):
    reason: ReasonName = "unspecified"


class RevocationView(msgspec.Struct, frozen=True, kw_only=True):
    serial: str
    revoked_at: dt.datetime
    reason: ReasonName
    already_revoked: bool


class CertificateView(msgspec.Struct, frozen=True, kw_only=True):
    serial: str
    status: Literal["good", "revoked"]
    organization: str
    profile: str
    names: list[str]
    not_before: dt.datetime
    not_after: dt.datetime
    certificate: str
    revoked_at: dt.datetime | None = None
    reason: ReasonName | None = None
    # "precertificate": only a precertificate was made (CT gave too few SCTs), and
    # `certificate` is it; its serial is still answered for and revocable.
    kind: Literal["certificate", "precertificate"] = "certificate"
    scts: int = 0  # SCTs embedded in the certificate
    issuer_key_id: str = ""  # hex: the issuing CA that signed it (its SKI)


class ErrorBody(msgspec.Struct, frozen=True, kw_only=True):
    error: str
    detail: str
    serial: str | None = None  # ct_unavailable: the precertificate's
    kind: str | None = None
