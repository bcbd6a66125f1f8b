"""The events issuance and revocation queue for the account's webhook, in the commit of
what they report (core/store/notify.py: none queued for an account without one)."""

from __future__ import annotations

from core.base.clock import from_epoch
from core.base.reasons import REASON_NAMES, RevocationReason
from core.store import CertRecord, WriteTxn
from core.store.renewals import ScheduledRenewal


def certificate(rec: CertRecord) -> dict[str, object]:
    return {
        "serial": rec.serial.hex(),
        "names": list(rec.names),
        "organization": rec.organization,
        "profile": rec.profile,
        "not_before": from_epoch(rec.not_before).isoformat(),
        "not_after": from_epoch(rec.not_after).isoformat(),
    }


def issued(txn: WriteTxn, rec: CertRecord, *, at: int) -> None:
    txn.enqueue_event(rec.account_id, "certificate.issued", certificate(rec), at=at)


def revoked(txn: WriteTxn, serial: bytes, reason: RevocationReason, *, at: int) -> None:
    rec = txn.get_cert(serial)
    if rec is None:
        return
    data = {
        **certificate(rec),
        "revoked_at": from_epoch(at).isoformat(),
        "reason": REASON_NAMES[reason],
    }
    txn.enqueue_event(rec.account_id, "certificate.revoked", data, at=at)


def renewal(txn: WriteTxn, kind: str, rec: ScheduledRenewal, *, at: int) -> None:
    """A scheduled renewal's news: scheduled, cancelled, failed (its certificate's
    issuance is certificate.issued)."""
    data: dict[str, object] = {
        "renewal": rec.id,
        "renewal_of": rec.renewal_of.hex(),
        "organization": rec.organization,
        "issue_at": from_epoch(rec.issue_at).isoformat(),
    }
    if rec.error:
        data["error"] = rec.error
    txn.enqueue_event(rec.account, kind, data, at=at)
