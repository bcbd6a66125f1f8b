"""The audit log: append-only, one entry per state change, written in the change's commit."""

from __future__ import annotations

from collections.abc import Iterator

from core.base.errors import StoreError
from core.store.counters import CounterReads, CounterWrites
from core.store.records import AUDIT, AuditEntry


class AuditReads(CounterReads):
    def iter_audit(self, since_seq: int = 0) -> Iterator[AuditEntry]:
        cur = self.txn.cursor(db=self.dbs[b"audit"])
        if not cur.set_range(since_seq.to_bytes(8, "big")):
            return
        for _key, value in cur:
            yield AUDIT.decode(value)


class AuditWrites(AuditReads, CounterWrites):
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
