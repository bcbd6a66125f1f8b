"""The status replication feed: what changed, in commit order, for the replicator to
bring to Redis after the commit (OCSP responses by serial, envelopes by responder
key, CRL files by name). Fed only while replication is on (a flag in the store, so
every process that writes it feeds, the CLI too); an entry is dropped once Redis has
it, and the cursor (a counter) says how far that is."""

from __future__ import annotations

from core.store.counters import CounterReads, CounterWrites
from core.store.keys import REPLICATION_CURSOR, REPLICATION_ON_KEY, REPLICATION_SEQ

OCSP = b"o"  # the rest is the serial's key in the ocsp database
ENVELOPE = b"e"  # the rest is the responder key hash
CRL = b"c"  # the rest is the file name in the publish folder


class ReplicationReads(CounterReads):
    def replication_on(self) -> bool:
        return self.txn.get(REPLICATION_ON_KEY, db=self.dbs[b"meta"]) is not None

    def replication_position(self) -> tuple[int, int]:
        """(the last change fed, the last change Redis has)."""
        return self.counter(REPLICATION_SEQ), self.counter(REPLICATION_CURSOR)

    def replication_changes(self, after: int, limit: int) -> list[tuple[int, bytes]]:
        """Up to `limit` changes after seq `after`, oldest first: (seq, kind | what)."""
        cur = self.txn.cursor(db=self.dbs[b"replication"])
        out: list[tuple[int, bytes]] = []
        if not cur.set_range((after + 1).to_bytes(8, "big")):
            return out
        for key, value in cur:
            out.append((int.from_bytes(key, "big"), bytes(value)))
            if len(out) >= limit:
                break
        return out


class ReplicationWrites(ReplicationReads, CounterWrites):
    _feeding: bool | None = None

    def changed(self, kind: bytes, what: bytes) -> None:
        """Feed a change, when replication is on (read once per transaction)."""
        if self._feeding is None:
            self._feeding = self.replication_on()
        if self._feeding:
            seq = self.next_counter(REPLICATION_SEQ)
            self.txn.put(seq.to_bytes(8, "big"), kind + what, db=self.dbs[b"replication"])

    def replicated(self, upto: int) -> None:
        """Redis has every change through `upto`: drop them, move the cursor."""
        cur = self.txn.cursor(db=self.dbs[b"replication"])
        limit = upto.to_bytes(8, "big")
        while cur.first() and cur.key() <= limit:
            cur.delete()
        self.raise_counter_to(REPLICATION_CURSOR, upto)

    def set_replication(self, on: bool) -> None:
        """Start or stop feeding; stopping drops what is fed and not replicated."""
        meta = self.dbs[b"meta"]
        if on:
            self.txn.put(REPLICATION_ON_KEY, b"1", db=meta)
        else:
            self.txn.delete(REPLICATION_ON_KEY, db=meta)
            self.replicated(self.counter(REPLICATION_SEQ))
        self._feeding = on
