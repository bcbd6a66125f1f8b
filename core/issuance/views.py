"""How a stored certificate is shown to API and CLI users."""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from core.base.clock import from_epoch
from core.base.errors import NotFound
from core.base.reasons import REASON_NAMES
from core.issuance.messages import CertificateView
from core.store import CertStatus, ReadTxn, Store


def certificate_view(read: ReadTxn, serial: bytes) -> CertificateView:
    rec = read.get_cert(serial)
    if rec is None:
        raise NotFound(f"no certificate with serial {serial.hex()}")
    cert = x509.load_der_x509_certificate(rec.der)
    return CertificateView(
        serial=rec.serial.hex(),
        status="revoked" if rec.status is CertStatus.REVOKED else "good",
        organization=rec.organization,
        profile=rec.profile,
        names=list(rec.names),
        not_before=from_epoch(rec.not_before),
        not_after=from_epoch(rec.not_after),
        certificate=cert.public_bytes(serialization.Encoding.PEM).decode(),
        revoked_at=from_epoch(rec.revoked_at) if rec.revoked_at is not None else None,
        reason=REASON_NAMES[rec.reason] if rec.reason is not None else None,
        kind="precertificate" if rec.precertificate_only else "certificate",
        scts=len(found) if (found := _scts(cert)) is not None else 0,
        issuer_key_id=rec.issuer.hex(),
    )


def _scts(cert: x509.Certificate) -> x509.PrecertificateSignedCertificateTimestamps | None:
    try:
        return cert.extensions.get_extension_for_class(
            x509.PrecertificateSignedCertificateTimestamps
        ).value
    except x509.ExtensionNotFound:
        return None


def scoped_view(store: Store, serial: bytes, accounts: frozenset[str] | None) -> CertificateView:
    """The certificate's view, for a caller limited to `accounts` (None: any): another
    account's certificate is answered as one never issued."""
    with store.read() as txn:
        if accounts is not None:
            rec = txn.get_cert(serial)
            if rec is None or rec.account_id not in accounts:
                raise NotFound(f"no certificate with serial {serial.hex()}")
        return certificate_view(txn, serial)
