"""Renewal information (RFC 9773): the certificate identifier clients send, and the
window hanko suggests, inside the renewal window its own rules open (90 days before
expiry, core/issuance/policy.py)."""

from __future__ import annotations

from collections.abc import Collection

from cryptography import x509

from core.acme.jws import b64decode, b64encode
from core.acme.problems import Problem
from core.store import CertRecord, ReadTxn

DAY = 86400
RENEWAL_WINDOW = 90 * DAY


def cert_id(cert: x509.Certificate) -> str:
    """base64url(AKI keyIdentifier) "." base64url(serial, DER INTEGER content)."""
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    return cert_id_of(aki.key_identifier or b"", cert.serial_number)


def cert_id_of(issuer_key_id: bytes, serial: int) -> str:
    raw = serial.to_bytes((serial.bit_length() + 8) // 8, "big")  # DER: a sign bit fits
    return f"{b64encode(issuer_key_id)}.{b64encode(raw)}"


def parse_cert_id(value: str, issuer_key_ids: Collection[bytes]) -> bytes:
    """The serial (store form: minimal unsigned octets) a certificate identifier names;
    its AKI must be one of this CA's issuers'."""
    aki, sep, serial = value.partition(".")
    if not sep or not aki or not serial:
        raise Problem("malformed", "a certificate identifier is AKI.serial in base64url")
    if b64decode(aki) not in issuer_key_ids:
        raise Problem(
            "malformed", "this certificate was not issued by one of this CA's issuers", status=404
        )
    raw = b64decode(serial).lstrip(b"\0")
    if not raw:
        raise Problem("malformed", "the certificate identifier names no serial")
    return raw


def suggested_window(
    not_before: int, not_after: int, *, revoked: bool, now: int
) -> tuple[int, int]:
    """(start, end) in epoch seconds: the last third of the lifetime, at most the 90 days
    a renewal may open before expiry, its first half; for a revoked certificate, now."""
    if revoked:
        return now - DAY, now
    lead = min(RENEWAL_WINDOW, (not_after - not_before) // 3)
    return not_after - lead, not_after - lead // 2


def named(txn: ReadTxn, value: str, issuer_key_ids: Collection[bytes]) -> CertRecord | None:
    """The certificate a certificate identifier names, or None: its serial's, when that
    was issued by the issuer its AKI names (a serial under another of ours names none)."""
    serial = parse_cert_id(value, issuer_key_ids)
    rec = txn.get_cert(serial)
    if rec is None or b64decode(value.partition(".")[0]) != rec.issuer:
        return None
    return rec
