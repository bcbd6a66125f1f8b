"""What one revocation commits: the status, its CRL entry (txn.revoke), the pre-signed
"revoked" OCSP responses, the licence given back, and for a key compromise the key
blocked from every later issuance (BR 4.9.1.1, 6.1.1.3)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from cryptography import x509

from core.base.clock import epoch_us, to_epoch
from core.base.errors import NotFound, PolicyError, SignerError
from core.base.reasons import RevocationReason
from core.config import ProfileConfig
from core.issuance import events
from core.issuance.keys import spki_sha256
from core.licenses import book
from core.store import BlockedKey, CertRecord, OcspRecord, WriteTxn


def store_ocsp(
    txn: WriteTxn, serial: bytes, rec: OcspRecord | SignerError | None, now: dt.datetime
) -> None:
    """Store fresh responses; if their signing failed, ask the refresher to retry now
    (the status is committed regardless: the CRL carries it, and the last response
    stays served until its nextUpdate)."""
    if isinstance(rec, OcspRecord):
        txn.put_ocsp(serial, rec)
    elif isinstance(rec, SignerError):
        txn.schedule_ocsp(serial, to_epoch(now))


def revoke_op(
    serial: bytes,
    code: RevocationReason,
    at: dt.datetime,
    *,
    entry: bytes,
    ocsp: OcspRecord | SignerError | None,
    actor: str,
) -> Callable[[WriteTxn], tuple[int, RevocationReason, bool]]:
    """The writer op: (revoked_at, the stored reason, whether it was revoked before).
    A second revocation changes nothing and keeps the first one's time and reason."""
    now = to_epoch(at)

    def op(txn: WriteTxn) -> tuple[int, RevocationReason, bool]:
        rev, created = txn.revoke(serial, at=now, reason=code, actor=actor, entry_der=entry)
        if created:
            store_ocsp(txn, serial, ocsp, at)
            events.revoked(txn, serial, code, at=now)
            revoked = txn.get_cert(serial)
            if revoked is not None and revoked.license:
                book.release(txn, revoked, now=now, actor=actor)
        if created and code is RevocationReason.KEY_COMPROMISE:
            cert = txn.get_cert(serial)
            if cert is None:  # revoke() just found it; cannot vanish in this txn
                raise NotFound(f"no certificate with serial {serial.hex()}")
            spki = spki_sha256(x509.load_der_x509_certificate(cert.der).public_key())
            txn.block_key(
                BlockedKey(spki_sha256=spki, blocked_at=now, reason="keyCompromise", serial=serial),
                at_us=epoch_us(now),
                actor=actor,
            )
        return rev.revoked_at, rev.reason, not created

    return op


def check_reason(prof: ProfileConfig | None, rec: CertRecord, reason: str) -> None:
    """A profile may narrow the reasons its certificates can be revoked for."""
    if prof is not None and reason not in prof.revocation_reasons:
        raise PolicyError(
            "reason_not_allowed",
            f"profile {rec.profile!r} does not allow revocation for {reason}"
            f" (allowed: {', '.join(prof.revocation_reasons)})",
        )
