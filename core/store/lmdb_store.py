"""The LMDB environment and typed transactions over its named databases.

One environment, opened durable (sync and metasync on): a commit that returns is on
disk. Other processes (OCSP responders, readers) open it read-only. Every write goes
through a WriteTxn so that the store's invariants (serials never repeat, counters only
grow, an audit entry for every state change) live in one place.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import lmdb
import msgspec

from core.base.errors import DuplicateSerial, NotFound, SchemaMismatch, StoreError
from core.base.reasons import RevocationReason
from core.store.records import (
    ACCOUNT,
    AUDIT,
    BLOCKED,
    CERT,
    CERT_STATUS,
    CRL_STATE,
    DOMAIN,
    ENVELOPE_PREFIX,
    ENVELOPE_SINCE_PREFIX,
    IDEMPOTENCY,
    LEDGER,
    LICENSE,
    OCSP_REFRESH_AT,
    ORG,
    REVOCATION,
    SCHEMA_VERSION,
    AccountRecord,
    AuditEntry,
    BlockedKey,
    CertRecord,
    CertStatus,
    CertStatusView,
    CrlState,
    DomainRecord,
    IdempotencyRecord,
    LedgerEntry,
    LicenseRecord,
    OcspEnvelope,
    OcspRecord,
    OrgRecord,
    RevocationRecord,
    due_key,
    due_key_at,
    expiry_key,
    partition_prefix,
    revocation_key,
    seq_key,
    serial_key,
)

T = TypeVar("T")

_DB_NAMES = (
    b"meta",
    b"certs",
    b"expiry",
    b"revocations",
    b"counters",
    b"audit",
    b"orgs",
    b"domains",
    b"blocked_keys",
    b"idempotency",
    b"ocsp",
    b"ocsp_due",
    # CRLs: issuer|partition|serial -> entry DER, issuer|partition|seq -> serial (the
    # order revocations arrived in, for deltas), issuer|partition|not_after|serial (to
    # prune expired entries), issuer|partition -> CrlState.
    b"crl_entries",
    b"crl_log",
    b"crl_expiry",
    b"crl_state",
    # Licenses: account id -> AccountRecord, license id -> LicenseRecord, the ledger
    # (seq -> LedgerEntry, append-only) with its index ("L" license | "A" account, \0,
    # seq), the live certificates of monthly plans (license \0 not_after serial), and
    # every certificate of an account by expiry (account \0 not_after serial).
    b"accounts",
    b"licenses",
    b"ledger",
    b"ledger_index",
    b"license_live",
    b"account_certs",
)
_SCHEMA_KEY = b"schema_version"
# The counter `status_generation` reads (see there); responders read it by key.
_STATUS_GENERATION = "cert_status_generation"
STATUS_GENERATION_KEY = _STATUS_GENERATION.encode()
# Moves when a responder key's envelope (its certificate) is replaced: responders drop
# what they built with the old one.
_ENVELOPE_GENERATION = "ocsp_envelope_generation"
ENVELOPE_GENERATION_KEY = _ENVELOPE_GENERATION.encode()
_MAX_DBS = 32  # room for the databases later issues add (OCSP responses, licenses, ...)


def _live_key(license_id: str, not_after: int, serial: bytes) -> bytes:
    return license_id.encode() + b"\0" + expiry_key(not_after, serial)


class Store:
    """An open LMDB environment. Use `read()` and `write()` for transactions."""

    def __init__(
        self,
        path: Path,
        *,
        map_size: int = 8 << 30,
        readonly: bool = False,
        create: bool = False,
    ) -> None:
        self.path = path
        self.readonly = readonly
        if not readonly and not create and not (path / "data.mdb").exists():
            raise StoreError(f"no LMDB environment at {path} (run `hanko init` first)")
        try:
            self.env = lmdb.open(
                str(path),
                map_size=map_size,
                subdir=True,
                readonly=readonly,
                create=create and not readonly,
                max_dbs=_MAX_DBS,
                max_readers=512,
                sync=True,
                metasync=True,
                lock=True,
            )
        except lmdb.Error as exc:
            raise StoreError(f"cannot open LMDB environment at {path}: {exc}") from exc
        try:
            self._dbs = self._open_dbs(create=create and not readonly)
            self._check_schema(create=create and not readonly)
        except BaseException:
            self.env.close()
            raise

    def _open_dbs(self, *, create: bool) -> dict[bytes, Any]:
        dbs: dict[bytes, Any] = {}
        try:
            # meta first: a folder that is not a hanko store is refused before anything
            # is created in it.
            dbs[b"meta"] = self.env.open_db(b"meta", create=create)
        except lmdb.NotFoundError as exc:
            raise StoreError(f"{self.path} is not a hanko store (missing databases)") from exc
        for name in _DB_NAMES[1:]:
            try:
                # Databases added by newer code appear on the first writable open; without
                # a transaction py-lmdb commits each handle in its own one.
                dbs[name] = self.env.open_db(name, create=not self.readonly)
            except lmdb.NotFoundError as exc:
                raise StoreError(
                    f"{self.path} lacks the {name.decode()} database: open it writable once"
                ) from exc
        return dbs

    def _check_schema(self, *, create: bool) -> None:
        with self.env.begin(write=create) as txn:
            raw = txn.get(_SCHEMA_KEY, db=self._dbs[b"meta"])
            if raw is None and create:
                txn.put(_SCHEMA_KEY, str(SCHEMA_VERSION).encode(), db=self._dbs[b"meta"])
                return
        if raw is None:
            raise SchemaMismatch(f"{self.path} has no schema version")
        if int(raw) != SCHEMA_VERSION:
            raise SchemaMismatch(
                f"{self.path} has schema version {int(raw)}, this hanko needs {SCHEMA_VERSION}"
            )

    def close(self) -> None:
        self.env.close()

    def handle(self, name: str) -> Any:
        """A named database's handle, for hot paths that use raw LMDB transactions
        (the OCSP responder)."""
        return self._dbs[name.encode()]

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def read(self) -> ReadTxn:
        return ReadTxn(self.env.begin(write=False, buffers=False), self._dbs)

    def write(self, op: Callable[[WriteTxn], T]) -> T:
        """Run `op` in one write transaction and commit it durably; one commit per call.

        The group-commit writer is the fast path for servers; this is for the CLI, for
        bootstrap and for the one-commit-per-write baseline.
        """
        if self.readonly:
            raise StoreError("store is open read-only")
        txn = self.env.begin(write=True)
        try:
            result = op(WriteTxn(txn, self._dbs, self.env))
        except BaseException:
            txn.abort()
            raise
        txn.commit()
        return result

    def commit_group(self, ops: list[Callable[[WriteTxn], Any]]) -> list[tuple[bool, Any]]:
        """Run many ops in one durable commit; each op in a nested transaction.

        An op that raises is rolled back alone and its exception returned in its slot;
        the others still commit. If the commit itself fails, every op fails with it.
        """
        if self.readonly:
            raise StoreError("store is open read-only")
        results: list[tuple[bool, Any]] = []
        txn = self.env.begin(write=True)
        try:
            for op in ops:
                child = self.env.begin(write=True, parent=txn)
                try:
                    value = op(WriteTxn(child, self._dbs, self.env))
                except Exception as exc:
                    child.abort()
                    results.append((False, exc))
                else:
                    child.commit()
                    results.append((True, value))
            txn.commit()
        except BaseException:
            txn.abort()
            raise
        return results

    def stat(self) -> dict[str, int]:
        with self.env.begin() as txn:
            return {name.decode(): txn.stat(self._dbs[name])["entries"] for name in _DB_NAMES}


class ReadTxn:
    """A read-only snapshot. Closing it releases the reader slot."""

    def __init__(self, txn: Any, dbs: dict[bytes, Any]) -> None:
        self.txn = txn
        self.dbs = dbs

    def __enter__(self) -> ReadTxn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.txn.abort()

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
        return self.counter(_STATUS_GENERATION)

    def counter(self, name: str) -> int:
        raw = self.txn.get(name.encode(), db=self.dbs[b"counters"])
        return 0 if raw is None else int.from_bytes(raw, "big")

    def get_revocation(
        self, issuer: bytes, partition: int, serial: bytes
    ) -> RevocationRecord | None:
        raw = self.txn.get(revocation_key(issuer, partition, serial), db=self.dbs[b"revocations"])
        return None if raw is None else REVOCATION.decode(raw)

    def iter_revocations(self, issuer: bytes, partition: int) -> Iterator[RevocationRecord]:
        prefix = partition_prefix(issuer, partition)
        cur = self.txn.cursor(db=self.dbs[b"revocations"])
        if not cur.set_range(prefix):
            return
        for key, value in cur:
            if not key.startswith(prefix):
                return
            yield REVOCATION.decode(value)

    # -- CRLs ---------------------------------------------------------------------------

    def crl_state(self, issuer: bytes, partition: int) -> CrlState:
        raw = self.txn.get(partition_prefix(issuer, partition), db=self.dbs[b"crl_state"])
        return CrlState() if raw is None else CRL_STATE.decode(raw)

    def crl_partitions(self, issuer: bytes) -> dict[int, CrlState]:
        """Every partition of `issuer` that ever had an entry or a CRL, with its state:
        partitions beyond today's count keep their CRLs while their certificates live."""
        cur = self.txn.cursor(db=self.dbs[b"crl_state"])
        found: dict[int, CrlState] = {}
        if not cur.set_range(issuer):
            return found
        for key, value in cur:
            if not key.startswith(issuer):
                break
            found[int.from_bytes(key[len(issuer) :], "big")] = CRL_STATE.decode(value)
        return found

    def crl_entry_chunks(
        self, issuer: bytes, partition: int, count: int, *, chunk: int = 8192
    ) -> Iterator[bytes]:
        """The partition's `count` entries (CrlState.entries, read in this snapshot), in
        serial order, concatenated `chunk` at a time. LMDB iterates the values in C; the
        count bounds the range, and both ends are checked against the key prefix."""
        if count == 0:
            return
        prefix = partition_prefix(issuer, partition)
        cur = self.txn.cursor(db=self.dbs[b"crl_entries"])
        if not cur.set_range(prefix) or not cur.key().startswith(prefix):
            raise StoreError(f"CRL partition {partition} should hold {count} entries, has none")
        values = cur.iternext(keys=False, values=True)
        left = count
        while left:
            take = min(chunk, left)
            part = b"".join(itertools.islice(values, take))
            left -= take
            yield part
        if not cur.key().startswith(prefix) or (cur.next() and cur.key().startswith(prefix)):
            raise StoreError(f"CRL partition {partition} does not hold exactly {count} entries")

    def crl_entries_since(self, issuer: bytes, partition: int, after_seq: int) -> list[bytes]:
        """Entries of revocations logged after `after_seq`, in serial order (a delta)."""
        prefix = partition_prefix(issuer, partition)
        log = self.txn.cursor(db=self.dbs[b"crl_log"])
        serials: list[bytes] = []
        if log.set_range(seq_key(prefix, after_seq + 1)):
            for key, skey in log:
                if not key.startswith(prefix):
                    break
                serials.append(skey)
        entries_db = self.dbs[b"crl_entries"]
        found = (self.txn.get(prefix + skey, db=entries_db) for skey in sorted(serials))
        # An entry pruned meanwhile (its certificate long expired) has left the CRL.
        return [entry for entry in found if entry is not None]

    def iter_expiring(self, before: int) -> Iterator[bytes]:
        """Serials whose not_after is earlier than `before`, soonest first."""
        cur = self.txn.cursor(db=self.dbs[b"expiry"])
        if not cur.first():
            return
        for key in cur.iternext(keys=True, values=False):
            if int.from_bytes(key[:8], "big") >= before:
                return
            yield key[8:].lstrip(b"\0")

    # -- accounts and licenses ------------------------------------------------------------

    def get_account(self, account_id: str) -> AccountRecord | None:
        raw = self.txn.get(account_id.encode(), db=self.dbs[b"accounts"])
        return None if raw is None else ACCOUNT.decode(raw)

    def iter_accounts(self) -> Iterator[AccountRecord]:
        for _key, value in self.txn.cursor(db=self.dbs[b"accounts"]):
            yield ACCOUNT.decode(value)

    def get_license(self, license_id: str) -> LicenseRecord | None:
        raw = self.txn.get(license_id.encode(), db=self.dbs[b"licenses"])
        return None if raw is None else LICENSE.decode(raw)

    def iter_licenses(self, account: str | None = None) -> Iterator[LicenseRecord]:
        for _key, value in self.txn.cursor(db=self.dbs[b"licenses"]):
            lic = LICENSE.decode(value)
            if account is None or lic.account == account:
                yield lic

    def iter_ledger(
        self, *, license: str | None = None, account: str | None = None, since: int = 0
    ) -> Iterator[LedgerEntry]:
        """Ledger entries in order: all, or one license's, or one account's."""
        ledger = self.dbs[b"ledger"]
        if license is None and account is None:
            cur = self.txn.cursor(db=ledger)
            if cur.set_range(since.to_bytes(8, "big")):
                for _key, value in cur:
                    yield LEDGER.decode(value)
            return
        prefix = (b"L" + license.encode()) if license is not None else b"A" + str(account).encode()
        prefix += b"\0"
        cur = self.txn.cursor(db=self.dbs[b"ledger_index"])
        if not cur.set_range(prefix + since.to_bytes(8, "big")):
            return
        for key in cur.iternext(keys=True, values=False):
            if not key.startswith(prefix):
                return
            yield LEDGER.decode(self.txn.get(key[len(prefix) :], db=ledger))

    def count_live(self, license_id: str, now: int) -> int:
        """Certificates of a monthly plan that are neither revoked nor expired at `now`."""
        prefix = license_id.encode() + b"\0"
        cur = self.txn.cursor(db=self.dbs[b"license_live"])
        n = 0
        if cur.set_range(prefix + now.to_bytes(8, "big")):
            for key in cur.iternext(keys=True, values=False):
                if not key.startswith(prefix):
                    break
                n += 1
        return n

    def iter_account_certs(self, account: str, *, expiring_after: int = 0) -> Iterator[bytes]:
        """Serials of an account's certificates by expiry, from `expiring_after` on."""
        prefix = account.encode() + b"\0"
        cur = self.txn.cursor(db=self.dbs[b"account_certs"])
        if not cur.set_range(prefix + expiring_after.to_bytes(8, "big")):
            return
        for key in cur.iternext(keys=True, values=False):
            if not key.startswith(prefix):
                return
            yield key[len(prefix) + 8 :].lstrip(b"\0")

    def get_org(self, org_id: str) -> OrgRecord | None:
        raw = self.txn.get(org_id.encode(), db=self.dbs[b"orgs"])
        return None if raw is None else ORG.decode(raw)

    def iter_domains(self, org_id: str) -> Iterator[DomainRecord]:
        prefix = org_id.encode() + b"\0"
        cur = self.txn.cursor(db=self.dbs[b"domains"])
        if not cur.set_range(prefix):
            return
        for key, value in cur:
            if not key.startswith(prefix):
                return
            yield DOMAIN.decode(value)

    def blocked_key(self, spki_sha256: bytes) -> BlockedKey | None:
        raw = self.txn.get(spki_sha256, db=self.dbs[b"blocked_keys"])
        return None if raw is None else BLOCKED.decode(raw)

    def get_idempotency(self, key: bytes) -> IdempotencyRecord | None:
        raw = self.txn.get(key, db=self.dbs[b"idempotency"])
        return None if raw is None else IDEMPOTENCY.decode(raw)

    def get_ocsp(self, serial: bytes) -> OcspRecord | None:
        raw = self.txn.get(serial_key(serial), db=self.dbs[b"ocsp"])
        return None if raw is None else OcspRecord.decode(raw)

    def ocsp_due(self, before: int, limit: int, *, after: bytes = b"") -> list[tuple[bytes, bytes]]:
        """(due key, serial) of responses due for re-signing before `before`, soonest
        first, at most `limit` of them, starting past the due key `after` (a cursor: the
        caller's batches still in flight are not handed out twice)."""
        out: list[tuple[bytes, bytes]] = []
        cur = self.txn.cursor(db=self.dbs[b"ocsp_due"])
        if not (cur.set_range(after) if after else cur.first()):
            return out
        # A due key is its time's 8 octets and more: it sorts at or after `stop`
        # exactly when its time is `before` or later.
        stop = before.to_bytes(8, "big")
        for key in cur.iternext(keys=True, values=False):
            if key == after:
                continue
            if len(out) >= limit or key >= stop:
                break
            out.append((key, key[8:].lstrip(b"\0")))
        return out

    def count_ocsp_due(self, before: int) -> int:
        cur = self.txn.cursor(db=self.dbs[b"ocsp_due"])
        n = 0
        if cur.first():
            for key in cur.iternext(keys=True, values=False):
                if int.from_bytes(key[:8], "big") >= before:
                    break
                n += 1
        return n

    def get_ocsp_envelope(self, key_hash: bytes) -> bytes | None:
        """The encoded envelope (ocsp.codec.ResponseEnvelope) of a responder key."""
        raw: bytes | None = self.txn.get(ENVELOPE_PREFIX + key_hash, db=self.dbs[b"meta"])
        return raw

    def iter_ocsp(self) -> Iterator[tuple[bytes, OcspRecord]]:
        cur = self.txn.cursor(db=self.dbs[b"ocsp"])
        for key, value in cur:
            yield key.lstrip(b"\0"), OcspRecord.decode(value)

    def iter_audit(self, since_seq: int = 0) -> Iterator[AuditEntry]:
        cur = self.txn.cursor(db=self.dbs[b"audit"])
        if not cur.set_range(since_seq.to_bytes(8, "big")):
            return
        for _key, value in cur:
            yield AUDIT.decode(value)


class WriteTxn(ReadTxn):
    """The only way state changes. Each mutation appends its own audit entry."""

    def __init__(self, txn: Any, dbs: dict[bytes, Any], env: Any) -> None:
        super().__init__(txn, dbs)
        self._env = env

    def attempt(self, op: Callable[[WriteTxn], T]) -> tuple[bool, T | Exception]:
        """Run `op` in a nested transaction: if it raises, only its own changes are
        rolled back and the exception is returned; the enclosing transaction goes on."""
        child = self._env.begin(write=True, parent=self.txn)
        try:
            value = op(WriteTxn(child, self.dbs, self._env))
        except Exception as exc:
            child.abort()
            return False, exc
        child.commit()
        return True, value

    def next_counter(self, name: str) -> int:
        """Increment and return a counter: values handed out never come back."""
        value = self.counter(name) + 1
        self.txn.put(name.encode(), value.to_bytes(8, "big"), db=self.dbs[b"counters"])
        return value

    def raise_counter_to(self, name: str, value: int) -> int:
        """Move a counter up to at least `value` (never down); returns the new value."""
        current = self.counter(name)
        if value > current:
            self.txn.put(name.encode(), value.to_bytes(8, "big"), db=self.dbs[b"counters"])
            return value
        return current

    def audit(
        self,
        *,
        at_us: int,
        actor: str,
        action: str,
        subject: str,
        detail: dict[str, str] | None = None,
    ) -> int:
        seq = self.next_counter("audit")
        entry = AuditEntry(
            seq=seq, at=at_us, actor=actor, action=action, subject=subject, detail=detail or {}
        )
        # append=True makes LMDB refuse a key that is not past the last one: the log
        # cannot be rewritten through this path even by a bug in the counter.
        if not self.txn.put(
            seq.to_bytes(8, "big"), AUDIT.encode(entry), db=self.dbs[b"audit"], append=True
        ):
            raise StoreError(f"audit sequence {seq} already used")
        return seq

    def insert_cert(self, rec: CertRecord, *, at_us: int, actor: str) -> None:
        key = serial_key(rec.serial)
        if not self.txn.put(key, CERT.encode(rec), db=self.dbs[b"certs"], overwrite=False):
            raise DuplicateSerial(f"serial {rec.serial.hex()} was already issued")
        self.next_counter(_STATUS_GENERATION)
        self.txn.put(expiry_key(rec.not_after, rec.serial), b"", db=self.dbs[b"expiry"])
        if rec.account_id:
            self.txn.put(
                rec.account_id.encode() + b"\0" + expiry_key(rec.not_after, rec.serial),
                b"",
                db=self.dbs[b"account_certs"],
            )
        self.audit(
            at_us=at_us,
            actor=actor,
            action="issue",
            subject=rec.serial.hex(),
            detail={"profile": rec.profile, "account": rec.account, "names": ",".join(rec.names)},
        )

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
        self.next_counter(_STATUS_GENERATION)
        self.add_crl_entry(
            cert.issuer,
            cert.partition,
            serial,
            not_after=cert.not_after,
            entry_der=entry_der,
            at=at,
        )
        self.audit(
            at_us=at * 1_000_000,
            actor=actor,
            action="revoke",
            subject=serial.hex(),
            detail={"reason": reason.name.lower()},
        )
        return rev, True

    def add_crl_entry(
        self,
        issuer: bytes,
        partition: int,
        serial: bytes,
        *,
        not_after: int,
        entry_der: bytes,
        at: int,
    ) -> None:
        """Put a revocation's CRL entry on its partition. `revoke` calls this; on its own
        it imports the revocations of certificates this store never issued (a CA moving
        to hanko) and fills benchmarks."""
        prefix = partition_prefix(issuer, partition)
        skey = serial_key(serial)
        if not self.txn.put(prefix + skey, entry_der, db=self.dbs[b"crl_entries"], overwrite=False):
            raise StoreError(f"serial {serial.hex()} is already on CRL partition {partition}")
        seq = self.next_counter("crl_log")
        self.txn.put(seq_key(prefix, seq), skey, db=self.dbs[b"crl_log"])
        self.txn.put(prefix + not_after.to_bytes(8, "big") + skey, b"", db=self.dbs[b"crl_expiry"])
        state = self.crl_state(issuer, partition)
        first_pending = state.changed_seq <= max(state.full_seq, state.delta_seq)
        self.put_crl_state(
            issuer,
            partition,
            msgspec.structs.replace(
                state,
                entries=state.entries + 1,
                size=state.size + len(entry_der),
                changed_seq=seq,
                pending_since=at if first_pending else state.pending_since,
            ),
        )

    def put_crl_state(self, issuer: bytes, partition: int, state: CrlState) -> None:
        self.txn.put(
            partition_prefix(issuer, partition), CRL_STATE.encode(state), db=self.dbs[b"crl_state"]
        )

    def prune_crl(self, issuer: bytes, partition: int, expired_before: int) -> int:
        """Drop the entries of certificates that expired before `expired_before` (the
        thisUpdate of a CRL that still listed them); returns how many left."""
        prefix = partition_prefix(issuer, partition)
        cur = self.txn.cursor(db=self.dbs[b"crl_expiry"])
        entries_db = self.dbs[b"crl_entries"]
        doomed: list[bytes] = []
        if cur.set_range(prefix):
            for key in cur.iternext(keys=True, values=False):
                if not key.startswith(prefix):
                    break
                if int.from_bytes(key[len(prefix) : len(prefix) + 8], "big") >= expired_before:
                    break
                doomed.append(key)
        if not doomed:
            return 0
        freed = 0
        for key in doomed:
            entry = self.txn.pop(prefix + key[len(prefix) + 8 :], db=entries_db)
            freed += len(entry) if entry is not None else 0
            self.txn.delete(key, db=self.dbs[b"crl_expiry"])
        state = self.crl_state(issuer, partition)
        self.put_crl_state(
            issuer,
            partition,
            msgspec.structs.replace(
                state, entries=state.entries - len(doomed), size=state.size - freed
            ),
        )
        return len(doomed)

    def trim_crl_log(
        self, issuer: bytes, partition: int, through_seq: int, *, limit: int = 10_000
    ) -> int:
        """Forget up to `limit` log positions up to `through_seq` (a published full CRL
        holds them, and deltas only look past it); returns how many. Bounded so that a
        build after a mass revocation does not hold the shared writer for long: the rest
        goes with the next builds."""
        prefix = partition_prefix(issuer, partition)
        cur = self.txn.cursor(db=self.dbs[b"crl_log"])
        if not cur.set_range(prefix):
            return 0
        done = 0
        while done < limit and cur.key().startswith(prefix):
            if int.from_bytes(cur.key()[len(prefix) :], "big") > through_seq:
                break
            done += 1
            if not cur.delete():  # moves to the next key; False at the end
                break
        return done

    def put_org(self, org: OrgRecord, *, at_us: int, actor: str) -> None:
        self.txn.put(org.id.encode(), ORG.encode(org), db=self.dbs[b"orgs"])
        self.audit(
            at_us=at_us,
            actor=actor,
            action="org.validate",
            subject=org.id,
            detail={"level": org.level, "organization": org.organization},
        )

    def put_account(self, rec: AccountRecord) -> None:
        """Accounts and licenses are audited through the ledger and the callers' audit
        entries; these only store the record."""
        self.txn.put(rec.id.encode(), ACCOUNT.encode(rec), db=self.dbs[b"accounts"])

    def put_license(self, rec: LicenseRecord) -> None:
        self.txn.put(rec.id.encode(), LICENSE.encode(rec), db=self.dbs[b"licenses"])

    def append_ledger(self, entry: LedgerEntry) -> LedgerEntry:
        """Append a movement (its `seq` is assigned here) and index it."""
        seq = self.next_counter("ledger")
        entry = msgspec.structs.replace(entry, seq=seq)
        key = seq.to_bytes(8, "big")
        # append=True: the ledger can only grow at its end, never be rewritten.
        if not self.txn.put(key, LEDGER.encode(entry), db=self.dbs[b"ledger"], append=True):
            raise StoreError(f"ledger sequence {seq} already used")
        index = self.dbs[b"ledger_index"]
        self.txn.put(b"L" + entry.license.encode() + b"\0" + key, b"", db=index)
        self.txn.put(b"A" + entry.account.encode() + b"\0" + key, b"", db=index)
        return entry

    def live_add(self, license_id: str, not_after: int, serial: bytes) -> None:
        self.txn.put(_live_key(license_id, not_after, serial), b"", db=self.dbs[b"license_live"])

    def live_remove(self, license_id: str, not_after: int, serial: bytes) -> None:
        self.txn.delete(_live_key(license_id, not_after, serial), db=self.dbs[b"license_live"])

    def put_cert(self, rec: CertRecord) -> None:
        """Rewrite an issued certificate's record (its license fields); never a new one."""
        key = serial_key(rec.serial)
        if self.txn.get(key, db=self.dbs[b"certs"]) is None:
            raise NotFound(f"no certificate with serial {rec.serial.hex()}")
        self.txn.put(key, CERT.encode(rec), db=self.dbs[b"certs"])
        self.next_counter(_STATUS_GENERATION)

    def put_domain(self, rec: DomainRecord, *, at_us: int, actor: str) -> None:
        """Record a domain validation; a domain belongs to an organization on record."""
        if self.get_org(rec.org_id) is None:
            raise NotFound(f"no organization {rec.org_id!r}")
        key = rec.org_id.encode() + b"\0" + rec.domain.encode()
        self.txn.put(key, DOMAIN.encode(rec), db=self.dbs[b"domains"])
        self.audit(
            at_us=at_us,
            actor=actor,
            action="domain.validate",
            subject=rec.domain,
            detail={"org": rec.org_id, "method": rec.method},
        )

    def remove_domain(self, org_id: str, domain: str, *, at_us: int, actor: str) -> DomainRecord:
        """Withdraw a domain validation (the customer lost the domain, or the validation
        was wrong): no certificate names it from then on, reissues and renewals
        included. Certificates already issued stay until they are revoked."""
        key = org_id.encode() + b"\0" + domain.encode()
        raw = self.txn.get(key, db=self.dbs[b"domains"])
        if raw is None:
            raise NotFound(f"{domain} is not a validated domain of organization {org_id!r}")
        self.txn.delete(key, db=self.dbs[b"domains"])
        self.audit(
            at_us=at_us, actor=actor, action="domain.remove", subject=domain, detail={"org": org_id}
        )
        return DOMAIN.decode(raw)

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

    def put_ocsp(self, serial: bytes, rec: OcspRecord) -> None:
        """Store a serial's pre-signed responses and schedule their next re-signing;
        their envelope too, the first time (or when the responder's certificate for
        that key changed).

        Not audited: re-signing restates a status, it decides nothing."""
        if rec.envelope is not None:
            self.put_ocsp_envelope(rec.envelope)
        self._put_ocsp(serial_key(serial), rec)

    def put_ocsp_many(self, items: Iterable[tuple[bytes, OcspRecord]]) -> int:
        """`put_ocsp` for a refresher's batch: each distinct envelope is checked once
        (a batch shares one). Returns how many were stored."""
        last: OcspEnvelope | None = None
        n = 0
        put = self._put_ocsp
        for serial, rec in items:
            env = rec.envelope
            if env is not None and env is not last:
                self.put_ocsp_envelope(env)
                last = env
            put(serial_key(serial), rec)
            n += 1
        return n

    def put_ocsp_envelope(self, env: OcspEnvelope) -> bool:
        """Store a responder key's envelope unless the one stored holds a certificate
        at least as recent (by notBefore). True if `env` is now the stored one and was
        not before.

        A renewed responder certificate (`hanko ca renew-responder`) reaches the store
        first; a process that has not adopted it yet keeps putting the old one with its
        responses, and must not put it back."""
        meta = self.dbs[b"meta"]
        # One small read per call: a per-transaction "already stored" flag would be
        # wrong after a nested transaction that stored it rolled back.
        env_key = ENVELOPE_PREFIX + env.key_hash
        stored = self.txn.get(env_key, db=meta)
        if stored == env.encoded:
            return False
        since_key = ENVELOPE_SINCE_PREFIX + env.key_hash
        if stored is not None:
            since = self.txn.get(since_key, db=meta)
            if since is not None and int.from_bytes(since, "big") >= env.since:
                return False
        self.txn.put(env_key, env.encoded, db=meta)
        self.txn.put(since_key, env.since.to_bytes(8, "big"), db=meta)
        if stored is not None:
            self.next_counter(_ENVELOPE_GENERATION)
        return True

    def _put_ocsp(self, key: bytes, rec: OcspRecord) -> None:
        # `replace` writes the record and hands back the one it replaced in one lookup;
        # the old record's refresh time names the due entry to drop (a get, a put and
        # a delete cost 6.3 us per serial, this 4.0).
        old = self.txn.replace(key, rec.encode(), db=self.dbs[b"ocsp"])
        due = self.dbs[b"ocsp_due"]
        if old is not None:
            self.txn.delete(old[OCSP_REFRESH_AT] + key, db=due)
        self.txn.put(due_key_at(rec.refresh_at, key), b"", db=due)

    def schedule_ocsp(self, serial: bytes, at: int) -> None:
        """Ask for a re-signing at `at` (now: the status changed but signing failed, or
        no response exists yet). The last response stays served until then."""
        key = serial_key(serial)
        self._unschedule_ocsp(key)
        raw = self.txn.get(key, db=self.dbs[b"ocsp"])
        if raw is not None:
            rec = msgspec.structs.replace(OcspRecord.decode(raw), refresh_at=at)
            self.txn.put(key, rec.encode(), db=self.dbs[b"ocsp"])
        else:
            self.txn.put(
                key,
                OcspRecord(this_update=0, next_update=0, refresh_at=at, signed={}).encode(),
                db=self.dbs[b"ocsp"],
            )
        self.txn.put(due_key(at, serial), b"", db=self.dbs[b"ocsp_due"])

    def unschedule_ocsp(self, serial: bytes) -> None:
        """Stop re-signing (the certificate expired); the last response stays."""
        self._unschedule_ocsp(serial_key(serial))

    def _unschedule_ocsp(self, key: bytes) -> None:
        raw = self.txn.get(key, db=self.dbs[b"ocsp"])
        if raw is not None:
            self.txn.delete(raw[OCSP_REFRESH_AT] + key, db=self.dbs[b"ocsp_due"])

    def put_idempotency(self, key: bytes, rec: IdempotencyRecord) -> None:
        self.txn.put(key, IDEMPOTENCY.encode(rec), db=self.dbs[b"idempotency"])
