"""Pre-signed OCSP responses, their re-signing schedule, and responder envelopes."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import msgspec

from core.store.counters import CounterReads
from core.store.keys import (
    ENVELOPE_GENERATION,
    ENVELOPE_PREFIX,
    ENVELOPE_SINCE_PREFIX,
    due_key,
    due_key_at,
    serial_key,
)
from core.store.records import OCSP_REFRESH_AT, OcspEnvelope, OcspRecord
from core.store.replication import ENVELOPE, OCSP, ReplicationWrites


class OcspReads(CounterReads):
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
        """The encoded envelope (ocsp.response_codec.ResponseEnvelope) of a responder key."""
        raw: bytes | None = self.txn.get(ENVELOPE_PREFIX + key_hash, db=self.dbs[b"meta"])
        return raw

    def ocsp_raw(self, key: bytes) -> bytes | None:
        """A serial's stored record bytes by its ocsp key (as the replication feed
        names it)."""
        raw: bytes | None = self.txn.get(key, db=self.dbs[b"ocsp"])
        return raw

    def ocsp_raw_after(self, after: bytes, limit: int) -> list[tuple[bytes, bytes]]:
        """Up to `limit` (ocsp key, record bytes) past key `after` (b"": from the first),
        in key order: a walk in chunks, each in a snapshot of its own."""
        cur = self.txn.cursor(db=self.dbs[b"ocsp"])
        found = cur.set_range(after) if after else cur.first()
        out: list[tuple[bytes, bytes]] = []
        while found and len(out) < limit:
            key = bytes(cur.key())
            if key != after:
                out.append((key, bytes(cur.value())))
            found = cur.next()
        return out

    def ocsp_envelopes(self) -> list[tuple[bytes, bytes]]:
        """Every responder key's (key hash, encoded envelope)."""
        return [
            (suffix, self.txn.get(ENVELOPE_PREFIX + suffix, db=self.dbs[b"meta"]))
            for suffix in self.suffixes(b"meta", ENVELOPE_PREFIX)
        ]

    def iter_ocsp(self) -> Iterator[tuple[bytes, OcspRecord]]:
        cur = self.txn.cursor(db=self.dbs[b"ocsp"])
        for key, value in cur:
            yield key.lstrip(b"\0"), OcspRecord.decode(value)


class OcspWrites(OcspReads, ReplicationWrites):
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
        self.changed(ENVELOPE, env.key_hash)
        if stored is not None:
            self.next_counter(ENVELOPE_GENERATION)
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
        self.changed(OCSP, key)

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
