"""Certificate records of a bench store, written through the store's own write path."""

from __future__ import annotations

import datetime as dt

from core.base.reasons import RevocationReason
from core.store import CertRecord, CertStatus, WriteTxn
from crl.encoder import revoked_entry

REASONS = [
    RevocationReason.KEY_COMPROMISE,
    RevocationReason.SUPERSEDED,
    RevocationReason.CESSATION_OF_OPERATION,
    RevocationReason.UNSPECIFIED,
]


def insert_bench_cert(
    txn: WriteTxn, serial: bytes, *, issuer: bytes, now: int, partition: int, revoked: bool
) -> None:
    """One certificate record of a bench store (no certificate bytes: no status reader
    needs them), revoked an hour before `now` when `revoked`, with its CRL entry."""
    rec = CertRecord(
        serial=serial,
        issuer=issuer,
        status=CertStatus.GOOD,
        not_before=now - 86400,
        not_after=now + 90 * 86400,
        names=[],
        organization="bench",
        profile="ov",
        partition=partition,
        der=b"",
    )
    txn.insert_cert(rec, at_us=now * 1_000_000, actor="bench")
    if revoked:
        reason = REASONS[serial[-1] % len(REASONS)]
        at = dt.datetime.fromtimestamp(now - 3600, dt.UTC)
        txn.revoke(
            serial,
            at=now - 3600,
            reason=reason,
            actor="bench",
            entry_der=revoked_entry(int.from_bytes(serial, "big"), at, reason),
        )
