"""What the store holds, as msgspec Structs, with codecs built once.

Records are array-like msgpack: compact and fast. New fields may only be appended with a
default, so older records keep decoding; anything else bumps SCHEMA_VERSION.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable
from typing import Generic, TypeVar

import msgspec

from core.base.reasons import RevocationReason

T = TypeVar("T")

# 2: CRL entries, log, expiry index and partition state (crl_* databases).
SCHEMA_VERSION = 2


class CertStatus(enum.IntEnum):
    GOOD = 0
    REVOKED = 1


class CertRecord(msgspec.Struct, array_like=True, frozen=True, kw_only=True):
    serial: bytes
    issuer: bytes  # the issuing CA's key identifier (SHA-1 of its public key)
    status: CertStatus
    not_before: int  # epoch seconds
    not_after: int
    names: list[str]
    organization: str  # the validated subject's organization id
    profile: str
    partition: int  # CRL partition, fixed at issuance for the certificate's life
    der: bytes
    revoked_at: int | None = None
    reason: RevocationReason | None = None
    # When the order was first issued; a reissue keeps it, so windows that run "from
    # issuance" (adding names by reissue) cannot be stretched by reissuing again.
    first_issued: int | None = None
    # Licensing: `account_id` is the paying account; `charged` is what the certificate
    # took from `license` (cert-days or units); `released` once a pooled charge was
    # returned or a live slot freed.
    account_id: str = ""
    license: str = ""
    charged: int = 0
    lot: int = 0
    released: bool = False
    # Reissues of the order up to this certificate (its first issuance: 0).
    reissues: int = 0
    # Certificate Transparency. While the SCTs are gathered, `der` is the precertificate
    # (its serial already answered for by OCSP and CRLs) and `precertificate_only` is
    # set; it stays set when no final certificate could be made. Once the final
    # certificate replaces it in `der`, the precertificate is kept here.
    precertificate_only: bool = False
    precertificate: bytes = b""
    # The coupon that paid it (the SHA-256 of its number): a renewal within a
    # multi-year coupon's cover is paid by it again.
    coupon: bytes = b""
    # The certificate that replaced it (its renewal or reissue): no more reminders.
    superseded_by: bytes = b""
    # How many names its charge paid for (per-name charging); 0 for one.
    names_charged: int = 0


class CertStatusView(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """What the OCSP refresher reads of a CertRecord: its fields in the same positions,
    the ones it does not need left undecoded (msgspec.Raw), so the DER and the names
    are neither copied nor tracked by the collector. Read twice per refreshed
    certificate (before signing, and at commit to see the status did not change)."""

    serial: bytes
    issuer: bytes
    status: CertStatus
    not_before: msgspec.Raw
    not_after: int
    names: msgspec.Raw
    organization: msgspec.Raw
    profile: msgspec.Raw
    partition: msgspec.Raw
    der: msgspec.Raw
    revoked_at: int | None = None
    reason: RevocationReason | None = None


class RevocationRecord(msgspec.Struct, array_like=True, frozen=True, kw_only=True):
    serial: bytes
    issuer: bytes
    partition: int
    revoked_at: int
    reason: RevocationReason
    not_after: int
    # The CRL entry, DER-encoded once at revocation, so a CRL is a concatenation.
    entry_der: bytes = b""


class CrlState(msgspec.Struct, array_like=True, frozen=True, kw_only=True):
    """One CRL partition: the sum of its stored entries, and what was last published.

    `entries` and `size` change in the transaction that adds or prunes an entry, so a
    build knows how many values its key range holds without scanning for its end.
    Full and delta CRLs of a partition share one CRL number sequence (RFC 5280 5.2.4).
    """

    entries: int = 0
    size: int = 0  # total DER length of the entries
    changed_seq: int = 0  # crl_log position of the partition's latest revocation
    pending_since: int = 0  # when the first revocation not yet on a published CRL came
    full_number: int = 0  # the last published full CRL (0: none yet)
    full_this_update: int = 0
    full_seq: int = 0  # the changed_seq that full CRL includes
    delta_number: int = 0
    delta_seq: int = 0
    delta_this_update: int = 0


class RevokedCa(msgspec.Struct, array_like=True, frozen=True, kw_only=True):
    """An issuing CA certificate revoked by its root: an entry of the root's CRL."""

    name: str
    serial: bytes
    revoked_at: int  # epoch seconds
    reason: int  # CRLReason code (BR 7.2.2 for CA certificates)
    not_after: int


class AuditEntry(msgspec.Struct, array_like=True, frozen=True, kw_only=True):
    seq: int
    at: int  # epoch microseconds
    actor: str
    action: str  # "issue", "revoke", "license.consume", ...
    subject: str  # what it acted on, e.g. a serial in hex
    detail: dict[str, str] = msgspec.field(default_factory=dict)


class OrgRecord(msgspec.Struct, array_like=True, frozen=True, kw_only=True):
    """An organization with validated identity; the subject of its certificates."""

    id: str
    level: str  # "ov" or "ev": what its validation allows
    organization: str
    country: str
    state: str | None
    locality: str | None
    validated_at: int  # epoch seconds of the identity validation
    jurisdiction_country: str | None = None  # EV
    business_category: str | None = None  # EV
    registration_number: str | None = None  # EV
    account: str = ""  # the account (primary client) it belongs to; "" for none
    parent: str = ""  # a sub-organization's primary organization, whose validation it shares


class DomainRecord(msgspec.Struct, array_like=True, frozen=True, kw_only=True):
    """A domain validation of an organization (BR 3.2.2.4)."""

    org_id: str
    domain: str  # canonical A-label form
    validated_at: int
    # Performed by hanko: "dns-change", "website-change", "email" (BR 3.2.2.4.7, .18,
    # .4), "dns-01", "http-01" (ACME). Asserted by an operator: "dns-txt", "http-file",
    # "email" with `attested_by` set.
    method: str
    attested_by: str = ""  # the operator who asserted it; "" when hanko performed it
    # What was seen, where and when (JSON): the evidence of a performed validation.
    evidence: str = ""
    challenge: str = ""  # the challenge it answered


class BlockedKey(msgspec.Struct, array_like=True, frozen=True, kw_only=True):
    spki_sha256: bytes
    blocked_at: int
    reason: str
    serial: bytes = b""


class IdempotencyRecord(msgspec.Struct, array_like=True, frozen=True, kw_only=True):
    body_sha256: bytes
    serials: list[bytes]
    scheduled: str = ""  # a renewal scheduled for later: its id (no serial yet)


class ApiKeyRecord(msgspec.Struct, array_like=True, frozen=True, kw_only=True):
    """An API credential. The secret itself is never stored, only its SHA-256 (the
    secret is 256 random bits: a slow hash would protect nothing more)."""

    id: str
    secret_sha256: bytes
    role: str  # issuer, reader or admin (core/access/roles.py)
    accounts: list[str]  # empty with all_accounts
    all_accounts: bool
    created_at: int  # epoch seconds
    created_by: str
    expires_at: int = 0  # epoch seconds; 0: never
    rate: float = 0.0  # requests per second; 0: unlimited
    client_cert_sha256: bytes = b""  # when set, only over mTLS with that certificate
    revoked_at: int = 0
    label: str = ""


class EabRecord(msgspec.Struct, array_like=True, frozen=True, kw_only=True):
    """An External Account Binding credential. Its HMAC key is never stored: it is
    derived from the `[acme] eab_secret` and the salt (core/acme/eab.py)."""

    kid: str
    salt: bytes
    account: str  # hanko's account, organization, profile and licence it issues under
    organization: str
    profile: str
    license: str = ""
    created_at: int = 0
    created_by: str = ""
    acme_account: str = ""  # the ACME account bound to it ("" until newAccount)
    revoked_at: int = 0
    # Further profiles its orders may ask for (draft-ietf-acme-profiles); `profile` is
    # the one an order that names none gets.
    profiles: list[str] = msgspec.field(default_factory=list)

    @property
    def allowed_profiles(self) -> list[str]:
        return [self.profile, *(p for p in self.profiles if p != self.profile)]


class AcmeAccountRecord(msgspec.Struct, array_like=True, frozen=True, kw_only=True):
    id: str
    jwk: bytes  # the account key's canonical JWK (JSON)
    thumbprint: str
    eab_kid: str
    created_at: int
    status: str = "valid"  # valid, deactivated
    contact: list[str] = msgspec.field(default_factory=list)


class AcmeChallenge(msgspec.Struct, array_like=True, frozen=True, kw_only=True):
    type: str  # http-01, dns-01
    token: str
    status: str = "pending"  # pending, processing, valid, invalid
    validated_at: int = 0
    error: str = ""
    # The ACME problem type of `error` ("": incorrectResponse).
    error_type: str = ""
    # Each remote perspective that did not corroborate: (its code, what it said).
    perspectives: list[tuple[str, str]] = msgspec.field(default_factory=list)
    # A valid challenge: the remote perspectives' quorum ("5/6, RIRs APNIC, ARIN").
    corroboration: str = ""


class AcmeAuthzRecord(msgspec.Struct, array_like=True, frozen=True, kw_only=True):
    id: str
    acme_account: str
    name: str  # the identifier, without "*."
    wildcard: bool
    status: str  # pending, valid, invalid, deactivated, expired
    expires: int
    challenges: list[AcmeChallenge] = msgspec.field(default_factory=list)


class AcmeOrderRecord(msgspec.Struct, array_like=True, frozen=True, kw_only=True):
    id: str
    acme_account: str
    names: list[str]  # as requested ("*.example.com" for a wildcard)
    authz: list[str]
    status: str  # pending, ready, processing, valid, invalid
    expires: int
    created_at: int
    serial: bytes = b""  # the certificate, once valid
    replaces: str = ""  # RFC 9773: the serial (hex) this order renews
    error: str = ""
    profile: str = ""  # the profile its certificate is issued under


class AccountRecord(msgspec.Struct, array_like=True, frozen=True, kw_only=True):
    """A primary client: its organizations, administrators and licenses."""

    id: str
    name: str
    created_at: int
    default_license: str = ""
    # Where extra administrators and organizations draw a unit, beyond those included.
    extras_license: str = ""
    included_admins: int = 1
    included_orgs: int = 1
    admins: list[str] = msgspec.field(default_factory=list)
    orgs: list[str] = msgspec.field(default_factory=list)


class Lot(msgspec.Struct, array_like=True, frozen=True, kw_only=True):
    """Units bought together (non-pooled units, coupons): they lapse together."""

    seq: int  # the ledger entry of the purchase
    at: int
    expires: int  # the first instant the lot's unused units are lapsed
    quantity: int
    used: int = 0
    lapsed: int = 0


class LicenseRecord(msgspec.Struct, array_like=True, frozen=True, kw_only=True):
    """One license and its cached balances; the ledger is the truth they derive from."""

    id: str
    account: str
    kind: str  # pooled, non_pooled, domain_bundle, coupon, monthly
    created_at: int
    start: int = 0  # term kinds (pooled, domain_bundle, monthly): the term
    end: int = 0  # the first instant past the term
    quantity: int = 0  # pooled: certificates; domain_bundle: licenses; monthly: live limit
    balance: int = 0  # pooled: certificate-days available
    consumed: int = 0  # everything ever taken (cert-days or units)
    returned: int = 0  # pooled: cert-days given back
    lapsed: int = 0  # unused cert-days or units the passing of time took
    lots: list[Lot] = msgspec.field(default_factory=list)
    domains: list[str] = msgspec.field(default_factory=list)


class LedgerEntry(msgspec.Struct, array_like=True, frozen=True, kw_only=True):
    """One movement of a license, appended in the transaction of the change it records.

    `amount` is signed in the license's unit: + credits (purchase, add, renew, return),
    - debits (consume, lapse). Renewals carry the term's new end.
    """

    seq: int
    at: int  # epoch seconds
    account: str
    license: str
    # purchase, add, renew, consume, transfer, return, lapse, domain; reserve and
    # unreserve hold and give back what a scheduled renewal will take
    movement: str
    amount: int
    actor: str
    lot: int = 0
    serial: str = ""  # the certificate, for consume, transfer and return
    item: str = ""  # what was paid for: certificate, administrator, organization
    term_end: int = 0
    quantity: int = 0  # certificates, licenses or live limit a purchase/add/renew adds
    note: str = ""


class Codec(Generic[T]):
    """An encoder/decoder pair for one record type, built once and reused."""

    __slots__ = ("decode", "encode")

    def __init__(self, typ: type[T]) -> None:
        self.encode: Callable[[object], bytes] = msgspec.msgpack.Encoder().encode
        self.decode: Callable[[bytes], T] = msgspec.msgpack.Decoder(typ).decode


CERT = Codec(CertRecord)
CERT_STATUS = Codec(CertStatusView)
ORG = Codec(OrgRecord)
DOMAIN = Codec(DomainRecord)
BLOCKED = Codec(BlockedKey)
IDEMPOTENCY = Codec(IdempotencyRecord)
REVOCATION = Codec(RevocationRecord)
CRL_STATE = Codec(CrlState)
AUDIT = Codec(AuditEntry)
ACCOUNT = Codec(AccountRecord)
API_KEY = Codec(ApiKeyRecord)
EAB = Codec(EabRecord)
ACME_ACCOUNT = Codec(AcmeAccountRecord)
ACME_AUTHZ = Codec(AcmeAuthzRecord)
ACME_ORDER = Codec(AcmeOrderRecord)
LICENSE = Codec(LicenseRecord)
LEDGER = Codec(LedgerEntry)


# Pre-signed OCSP responses, one record per serial: a fixed header, then one signed
# response per CertID hash (SHA-1, SHA-256). A flat layout rather than msgpack because
# the responder reads it on every request and only needs one slice of it.
#
# A signed response is the ResponseData and its signature, without the envelope (the
# signature algorithm and the responder's certificate, most of the bytes): that is kept
# once per responder key (OcspEnvelope, in the meta database) and put around on the way
# out (ocsp.response_codec.ResponseEnvelope). Records written before this layout hold whole
# OCSPResponses and are served as they are until re-signed.
_OCSP_HEADER = 24
_OCSP_HEAD = struct.Struct(">QQQ")  # this_update, next_update, refresh_at
_OCSP_ENTRY = struct.Struct(">BI")  # CertIdHash value, length of the response
# Where the header keeps refresh_at: big-endian, as due keys (keys.due_key) start with it.
OCSP_REFRESH_AT = slice(16, _OCSP_HEADER)


class OcspEnvelope(msgspec.Struct, frozen=True, gc=False):
    key_hash: bytes  # SHA-1 of the responder's public key, as in its responder ID
    encoded: bytes  # signature AlgorithmIdentifier || [0] certs
    # notBefore of the responder certificate inside (epoch seconds): of two envelopes
    # for one key, the store keeps the later certificate (`hanko ca renew-responder`).
    since: int = 0


class OcspRecord(msgspec.Struct, frozen=True, kw_only=True):
    this_update: int  # epoch seconds
    next_update: int
    refresh_at: int  # when the refresher re-signs it
    signed: dict[int, bytes]  # CertIdHash value -> ResponseData || signature
    # What wraps `signed`; `put_ocsp` stores it (once per responder key), it is not part
    # of the record's own bytes.
    envelope: OcspEnvelope | None = None

    def encode(self) -> bytes:
        # struct packing: once per refreshed certificate, 0.6 us against 1.8 with
        # to_bytes and a concatenation per response.
        parts = [_OCSP_HEAD.pack(self.this_update, self.next_update, self.refresh_at)]
        signed = self.signed
        for hash_id in sorted(signed):
            der = signed[hash_id]
            parts.append(_OCSP_ENTRY.pack(hash_id, len(der)))
            parts.append(der)
        return b"".join(parts)

    @classmethod
    def decode(cls, raw: bytes) -> OcspRecord:
        signed: dict[int, bytes] = {}
        pos = _OCSP_HEADER
        while pos < len(raw):
            size = int.from_bytes(raw[pos + 1 : pos + 5], "big")
            signed[raw[pos]] = bytes(raw[pos + 5 : pos + 5 + size])
            pos += 5 + size
        return cls(
            this_update=int.from_bytes(raw[0:8], "big"),
            next_update=int.from_bytes(raw[8:16], "big"),
            refresh_at=int.from_bytes(raw[16:24], "big"),
            signed=signed,
        )


def ocsp_response_in(raw: bytes, hash_id: int) -> tuple[int, int, bytes] | None:
    """(thisUpdate, nextUpdate, signed response) of one hash in an encoded OcspRecord,
    without decoding the rest: the responder's hot path."""
    pos = _OCSP_HEADER
    end = len(raw)
    while pos < end:
        size = int.from_bytes(raw[pos + 1 : pos + 5], "big")
        if raw[pos] == hash_id:
            return (
                int.from_bytes(raw[0:8], "big"),
                int.from_bytes(raw[8:16], "big"),
                bytes(raw[pos + 5 : pos + 5 + size]),
            )
        pos += 5 + size
    return None
