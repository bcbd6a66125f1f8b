"""CRL entries by partition, the log deltas read, expiry pruning and partition state."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import msgspec

from core.base.errors import StoreError
from core.store.counters import CounterWrites
from core.store.keys import partition_prefix, revocation_key, seq_key, serial_key
from core.store.records import CRL_STATE, REVOCATION, CrlState, RevocationRecord, RevokedCa
from core.store.txn import Txn

# In meta: the issuing CA certificates their root revoked (the root CRL's entries).
REVOKED_CA_PREFIX = b"revoked_ca:"
_REVOKED_CA = msgspec.msgpack.Decoder(RevokedCa)


class CrlReads(Txn):
    def revoked_cas(self) -> list[RevokedCa]:
        cur = self.txn.cursor(db=self.dbs[b"meta"])
        out: list[RevokedCa] = []
        if not cur.set_range(REVOKED_CA_PREFIX):
            return out
        for key, value in cur:
            if not bytes(key).startswith(REVOKED_CA_PREFIX):
                break
            out.append(_REVOKED_CA.decode(value))
        return out

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


class CrlWrites(CrlReads, CounterWrites):
    def put_revoked_ca(self, rec: RevokedCa) -> bool:
        """Record a revoked issuing CA; False if it was recorded before (kept as it was)."""
        key = REVOKED_CA_PREFIX + serial_key(rec.serial)
        return bool(
            self.txn.put(key, msgspec.msgpack.encode(rec), db=self.dbs[b"meta"], overwrite=False)
        )

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
