"""A store of a few thousand certificates with known answers, for `hanko certs
search` on both back ends: each certificate's attributes follow from its index, so a
test states what a search must find with a plain comprehension over `CERTS`.

The DER of each is a real certificate (one per key type, made here), so key types and
SPKI hashes are read from it as from an issued one."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from bench.search_load import new_key, self_signed
from core.base.reasons import RevocationReason
from core.store import CertRecord, CertStatus
from crl.encoder import revoked_entry

COUNT = 3000
# Issuance from 2026-09-01 00:00 UTC, one certificate an hour, 90 days each.
START = int(dt.datetime(2026, 9, 1, tzinfo=dt.UTC).timestamp())
HOUR = 3600
LIFE = 90 * 86400
# "Now" for status: certificates issued before 2026-09-06 have expired.
NOW = START + 90 * 86400 + 5 * 86400
ISSUER_A = bytes.fromhex("a1" * 20)
ISSUER_B = bytes.fromhex("b2" * 20)
KEY_TYPES = ("ecdsa-p256", "ecdsa-p384", "rsa-2048")  # as bench.search_load.new_key makes


DER = {k: self_signed(new_key(k)) for k in KEY_TYPES}


@dataclass(frozen=True)
class Spec:
    i: int
    serial: bytes
    organization: str
    account: str
    profile: str
    issuer: bytes
    not_before: int
    not_after: int
    names: tuple[str, ...]
    revoked: bool
    key_type: str
    precertificate_only: bool

    @property
    def status(self) -> str:
        if self.revoked:
            return "revoked"
        return "expired" if self.not_after <= NOW else "good"


def spec(i: int) -> Spec:
    nb = START + i * HOUR
    names = [f"host{i}.example.co.jp", f"www{i % 10}.other.jp"]
    if i % 13 == 0:
        names.append("*.example.co.jp")
    if i % 17 == 0:
        names.append("example.co.jp")
    return Spec(
        i=i,
        serial=(0x40_0000_0000 + i * 7919).to_bytes(5, "big"),
        organization=f"org{i % 7}",
        account="" if i % 11 == 0 else f"acct{i % 5}",
        profile="ev" if i % 3 == 0 else "ov",
        issuer=ISSUER_A if i % 2 == 0 else ISSUER_B,
        not_before=nb,
        not_after=nb + LIFE,
        names=tuple(names),
        revoked=i % 9 == 0,
        key_type=KEY_TYPES[i % 3 if i % 4 else (i // 4) % 3],
        precertificate_only=i % 97 == 5,
    )


CERTS = [spec(i) for i in range(COUNT)]


def record(s: Spec) -> CertRecord:
    return CertRecord(
        serial=s.serial,
        issuer=s.issuer,
        status=CertStatus.GOOD,
        not_before=s.not_before,
        not_after=s.not_after,
        names=list(s.names),
        organization=s.organization,
        profile=s.profile,
        partition=s.i % 4,
        der=DER[s.key_type],
        account_id=s.account,
        precertificate_only=s.precertificate_only,
    )


def fill(store: Any, certs: list[Spec] = CERTS, *, chunk: int = 500) -> None:
    """Write the certificates (and revocations) through the store's own write path."""
    for first in range(0, len(certs), chunk):
        part = certs[first : first + chunk]

        def op(txn: Any, part: list[Spec] = part) -> None:
            for s in part:
                rec = record(s)
                if s.precertificate_only:
                    txn.insert_precertificate(rec, at_us=s.not_before * 1_000_000, actor="test")
                else:
                    txn.insert_cert(rec, at_us=s.not_before * 1_000_000, actor="test")
                if s.revoked:
                    at = s.not_before + 3600
                    reason = RevocationReason.KEY_COMPROMISE
                    txn.revoke(
                        s.serial,
                        at=at,
                        reason=reason,
                        actor="test",
                        entry_der=revoked_entry(
                            int.from_bytes(s.serial, "big"),
                            dt.datetime.fromtimestamp(at, dt.UTC),
                            reason,
                        ),
                    )

        store.write(op)


def serials(certs: Any) -> list[str]:
    """Serials in hex, in the order searches give them (the store's serial order)."""
    return sorted((c.serial.hex() for c in certs), key=lambda h: (len(h), h))
