"""Certificates: records, the expiry index, revocation, blocked keys, idempotency."""

from __future__ import annotations

from collections.abc import Iterator

import msgspec

from core.base.clock import epoch_us
from core.base.errors import DuplicateSerial, NotFound, PolicyError, StoreError
from core.base.reasons import RevocationReason
from core.store.audit import AuditWrites
from core.store.counters import CounterReads
from core.store.crl import CrlReads, CrlWrites
from core.store.keys import (
    LAST_EXPIRY_PREFIX,
    STATUS_GENERATION,
    account_cert_key,
    expiry_key,
    revocation_key,
    serial_key,
)
from core.store.records import (
    BLOCKED,
    CERT,
    CERT_STATUS,
    IDEMPOTENCY,
    REVOCATION,
    BlockedKey,
    CertRecord,
    CertStatus,
    CertStatusView,
    IdempotencyRecord,
    RevocationRecord,
)


class CertReads(CrlReads, CounterReads):
    def get_cert(self, serial: bytes) -> CertRecord | None:
        raw = self.txn.get(serial_key(serial), db=self.dbs[b"certs"])
        return None if raw is None else CERT.decode(raw)

    def get_cert_status(self, serial: bytes) -> CertStatusView | None:
        """`get_cert`, decoding only what a status needs (records.CertStatusView)."""
        raw = self.txn.get(serial_key(serial), db=self.dbs[b"certs"])
        return None if raw is None else CERT_STATUS.decode(raw)

    def status_generation(self) -> int:
        """A number that moves whenever any certificate's record is written (issued,
        revoked, rewritten), in the same commit. Equal in two transactions: no status
        changed between them, so a reader need not look at each certificate again. It
        lives in the store, so writers in other processes move it too."""
        return self.counter(STATUS_GENERATION)

    def iter_expiring(self, before: int) -> Iterator[bytes]:
        """Serials whose not_after is earlier than `before`, soonest first."""
        cur = self.txn.cursor(db=self.dbs[b"expiry"])
        if not cur.first():
            return
        for key in cur.iternext(keys=True, values=False):
            if int.from_bytes(key[:8], "big") >= before:
                return
            yield key[8:].lstrip(b"\0")

    def valid_by_issuer(self, now: int) -> dict[bytes, tuple[int, int]]:
        """(certificates with notAfter at or after `now`, their latest notAfter) per
        issuer key id: one walk of the expiry index, whose values name the issuer (an
        entry written before they did is looked up in its record)."""
        out: dict[bytes, tuple[int, int]] = {}
        cur = self.txn.cursor(db=self.dbs[b"expiry"])
        if not cur.set_range(now.to_bytes(8, "big")):
            return out
        for key, value in cur.iternext(keys=True, values=True):
            issuer = bytes(value)
            if not issuer:
                rec = self.get_cert(bytes(key[8:]).lstrip(b"\0"))
                if rec is None:
                    continue
                issuer = rec.issuer
            count, _ = out.get(issuer, (0, 0))
            out[issuer] = (count + 1, int.from_bytes(key[:8], "big"))
        return out

    def expiring_between(self, after: int, before: int) -> Iterator[tuple[int, bytes]]:
        """(not_after, serial) of certificates with after < not_after <= before."""
        cur = self.txn.cursor(db=self.dbs[b"expiry"])
        if not cur.set_range((after + 1).to_bytes(8, "big")):
            return
        for key in cur.iternext(keys=True, values=False):
            not_after = int.from_bytes(key[:8], "big")
            if not_after > before:
                return
            yield not_after, key[8:].lstrip(b"\0")

    def prefetch_issuance(self, serials: list[bytes]) -> None:
        """Warm what issuing these serials reads (their certificate and OCSP records),
        one round trip per table on a networked store, before the group's ops run."""
        keys = [serial_key(s) for s in serials]
        self.prefetch(b"certs", keys)
        self.prefetch(b"ocsp", keys)

    def blocked_key(self, spki_sha256: bytes) -> BlockedKey | None:
        raw = self.txn.get(spki_sha256, db=self.dbs[b"blocked_keys"])
        return None if raw is None else BLOCKED.decode(raw)

    def get_idempotency(self, key: bytes) -> IdempotencyRecord | None:
        raw = self.txn.get(key, db=self.dbs[b"idempotency"])
        return None if raw is None else IDEMPOTENCY.decode(raw)


class CertWrites(CertReads, CrlWrites, AuditWrites):
    def insert_cert(self, rec: CertRecord, *, at_us: int, actor: str) -> None:
        self._insert(rec)
        self._issued(rec, at_us=at_us, actor=actor)

    def insert_precertificate(self, rec: CertRecord, *, at_us: int, actor: str) -> None:
        """A precertificate's record, committed before it goes to CT logs: its serial is
        taken and answered for from then on (a precertificate is a promise of issuance),
        but it is nobody's certificate yet (no account index, nothing charged)."""
        if not rec.precertificate_only:
            raise ValueError("insert_precertificate takes a precertificate's record")
        self._insert(rec)
        self.audit(
            at_us=at_us,
            actor=actor,
            action="precertificate",
            subject=rec.serial.hex(),
            detail={"profile": rec.profile, "organization": rec.organization},
        )

    def complete_precertificate(self, rec: CertRecord, *, at_us: int, actor: str) -> None:
        """The final certificate of a committed precertificate (same serial)."""
        stored = self.get_cert(rec.serial)
        if stored is None or not stored.precertificate_only:
            raise StoreError(f"serial {rec.serial.hex()} is not a precertificate awaiting issuance")
        if stored.status is CertStatus.REVOKED:
            raise PolicyError(
                "precertificate_revoked",
                "the precertificate was revoked while its SCTs were gathered",
            )
        self.txn.put(serial_key(rec.serial), CERT.encode(rec), db=self.dbs[b"certs"])
        self.next_counter(STATUS_GENERATION)
        self._issued(rec, at_us=at_us, actor=actor)

    def _insert(self, rec: CertRecord) -> None:
        key = serial_key(rec.serial)
        if not self.txn.put(key, CERT.encode(rec), db=self.dbs[b"certs"], overwrite=False):
            raise DuplicateSerial(f"serial {rec.serial.hex()} was already issued")
        self.next_counter(STATUS_GENERATION)
        # The value names the issuer: certificates still valid per issuer, by one scan.
        self.txn.put(expiry_key(rec.not_after, rec.serial), rec.issuer, db=self.dbs[b"expiry"])
        self.raise_counter_to(LAST_EXPIRY_PREFIX + rec.issuer.hex(), rec.not_after)

    def _issued(self, rec: CertRecord, *, at_us: int, actor: str) -> None:
        if rec.account_id:
            self.txn.put(
                account_cert_key(rec.account_id, rec.not_after, rec.serial),
                b"",
                db=self.dbs[b"account_certs"],
            )
        self.audit(
            at_us=at_us,
            actor=actor,
            action="issue",
            subject=rec.serial.hex(),
            detail={
                "profile": rec.profile,
                "organization": rec.organization,
                "names": ",".join(rec.names),
            },
        )

    def supersede(self, serial: bytes, *, by: bytes) -> None:
        """Mark a certificate replaced by its renewal or reissue `by`."""
        rec = self.get_cert(serial)
        if rec is not None and rec.superseded_by != by:
            self.put_cert(msgspec.structs.replace(rec, superseded_by=by))

    def put_cert(self, rec: CertRecord) -> None:
        """Rewrite an issued certificate's record (its license fields); never a new one."""
        key = serial_key(rec.serial)
        if self.txn.get(key, db=self.dbs[b"certs"]) is None:
            raise NotFound(f"no certificate with serial {rec.serial.hex()}")
        self.txn.put(key, CERT.encode(rec), db=self.dbs[b"certs"])
        self.next_counter(STATUS_GENERATION)

    def revoke(
        self,
        serial: bytes,
        *,
        at: int,
        reason: RevocationReason,
        actor: str,
        entry_der: bytes,
    ) -> tuple[RevocationRecord, bool]:
        """Revoke once. Returns the revocation and whether this call created it.

        Revoking a revoked certificate returns the existing revocation unchanged: a
        revoked serial never becomes good, and its reason and date never move.
        """
        cert = self.get_cert(serial)
        if cert is None:
            raise NotFound(f"no certificate with serial {serial.hex()}")
        if cert.status is CertStatus.REVOKED:
            existing = self.get_revocation(cert.issuer, cert.partition, serial)
            if existing is None:
                raise StoreError(f"serial {serial.hex()} is revoked but has no revocation entry")
            return existing, False
        if not entry_der:
            raise ValueError("a revocation needs its CRL entry DER")
        rev = RevocationRecord(
            serial=serial,
            issuer=cert.issuer,
            partition=cert.partition,
            revoked_at=at,
            reason=reason,
            not_after=cert.not_after,
            entry_der=entry_der,
        )
        self.txn.put(
            revocation_key(cert.issuer, cert.partition, serial),
            REVOCATION.encode(rev),
            db=self.dbs[b"revocations"],
        )
        updated = msgspec.structs.replace(
            cert, status=CertStatus.REVOKED, revoked_at=at, reason=reason
        )
        self.txn.put(serial_key(serial), CERT.encode(updated), db=self.dbs[b"certs"])
        self.next_counter(STATUS_GENERATION)
        self.add_crl_entry(
            cert.issuer,
            cert.partition,
            serial,
            not_after=cert.not_after,
            entry_der=entry_der,
            at=at,
        )
        self.audit(
            at_us=epoch_us(at),
            actor=actor,
            action="revoke",
            subject=serial.hex(),
            detail={"reason": reason.name.lower()},
        )
        return rev, True

    def block_key(self, rec: BlockedKey, *, at_us: int, actor: str) -> None:
        if self.txn.put(
            rec.spki_sha256, BLOCKED.encode(rec), db=self.dbs[b"blocked_keys"], overwrite=False
        ):
            self.audit(
                at_us=at_us,
                actor=actor,
                action="key.block",
                subject=rec.spki_sha256.hex(),
                detail={"reason": rec.reason, "serial": rec.serial.hex()},
            )

    def put_idempotency(self, key: bytes, rec: IdempotencyRecord) -> None:
        self.txn.put(key, IDEMPOTENCY.encode(rec), db=self.dbs[b"idempotency"])
