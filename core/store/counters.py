"""Counters: numbers that only grow (serial sequences, CRL numbers, log positions)."""

from __future__ import annotations

from core.store.txn import Txn


class CounterReads(Txn):
    def counter(self, name: str) -> int:
        raw = self.txn.get(name.encode(), db=self.dbs[b"counters"])
        return 0 if raw is None else int.from_bytes(raw, "big")


class CounterWrites(CounterReads):
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
