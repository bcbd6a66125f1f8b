"""Admin API messages for the preconditions of issuance: organizations and domains."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

import msgspec

from core.base.fields import Identifier

_STRICT = {"forbid_unknown_fields": True, "kw_only": True, "frozen": True}
# A validation date names its time zone (a bare local time is ambiguous by hours).
ValidatedAt = Annotated[dt.datetime, msgspec.Meta(tz=True)]


class OrganizationIn(msgspec.Struct, **_STRICT):
    id: str
    level: Literal["ov", "ev"]
    organization: str
    country: str
    state: str | None = None
    locality: str | None = None
    jurisdiction_country: str | None = None
    business_category: str | None = None
    registration_number: str | None = None
    # When the identity was validated; default: now. A sub-organization takes its
    # parent's instead.
    validated_at: ValidatedAt | None = None
    # The account (primary client) it belongs to, and for a sub-organization the
    # primary organization whose validation it shares (OV only).
    account: Identifier | None = None
    parent: Identifier | None = None


class DomainIn(msgspec.Struct, **_STRICT):
    domain: str
    method: Literal["dns-txt", "http-file", "email"]
    validated_at: ValidatedAt | None = None


class DomainOut(msgspec.Struct, frozen=True, kw_only=True):
    organization: str
    domain: str
    method: str
    validated_at: dt.datetime
    attested_by: str | None = None  # the operator who asserted it; None: hanko validated
