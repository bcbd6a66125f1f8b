"""ACME request payloads and resource objects (RFC 8555 7.1), as msgspec Structs: the
payloads reject unknown fields where the RFC closes the object, the resources are
encoded once per answer."""

from __future__ import annotations

from typing import Any

import msgspec

_IN = {"frozen": True, "kw_only": True}
_OUT = {"frozen": True, "kw_only": True, "omit_defaults": True}


class Identifier(msgspec.Struct, **_IN):
    type: str
    value: str


class NewAccount(msgspec.Struct, **_IN):
    contact: list[str] | None = None
    termsOfServiceAgreed: bool | None = None
    onlyReturnExisting: bool = False
    externalAccountBinding: dict[str, Any] | None = None


class AccountUpdate(msgspec.Struct, **_IN):
    contact: list[str] | None = None
    status: str | None = None
    termsOfServiceAgreed: bool | None = None


class NewOrder(msgspec.Struct, **_IN):
    identifiers: list[Identifier]
    notBefore: str | None = None
    notAfter: str | None = None
    replaces: str | None = None  # RFC 9773
    profile: str | None = None  # draft-ietf-acme-profiles


class Finalize(msgspec.Struct, **_IN):
    csr: str


class RevokeCert(msgspec.Struct, **_IN):
    certificate: str
    reason: int | None = None


class KeyChange(msgspec.Struct, **_IN):
    account: str
    oldKey: dict[str, Any]


class Meta(msgspec.Struct, **_OUT):
    externalAccountRequired: bool
    website: str | None = None
    profiles: dict[str, str] | None = None  # name -> description


class Directory(msgspec.Struct, **_OUT):
    newNonce: str
    newAccount: str
    newOrder: str
    revokeCert: str
    keyChange: str
    renewalInfo: str
    meta: Meta


class Account(msgspec.Struct, **_OUT):
    status: str
    orders: str
    contact: list[str] = msgspec.field(default_factory=list)


class Challenge(msgspec.Struct, **_OUT):
    type: str
    url: str
    status: str
    token: str
    validated: str | None = None
    error: dict[str, Any] | None = None
    # The remote perspectives' quorum of a valid challenge (BR 3.2.2.9); an extension
    # field ACME clients ignore.
    corroboration: str | None = None


class Authorization(msgspec.Struct, **_OUT):
    identifier: Identifier
    status: str
    expires: str
    challenges: list[Challenge]
    wildcard: bool = False


class Order(msgspec.Struct, **_OUT):
    status: str
    expires: str
    identifiers: list[Identifier]
    authorizations: list[str]
    finalize: str
    certificate: str | None = None
    replaces: str | None = None
    profile: str | None = None
    error: dict[str, Any] | None = None


class RenewalInfo(msgspec.Struct, **_OUT):
    suggestedWindow: dict[str, str]
    explanationURL: str | None = None
