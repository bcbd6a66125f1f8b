"""The transaction every domain module of the store extends: an LMDB transaction and
the named databases it may touch. ReadTxn and WriteTxn are the domains put together."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Txn:
    """A transaction over the store's databases. Closing it releases the reader slot
    (or, for a write, abandons what was not committed)."""

    def __init__(
        self, txn: Any, dbs: dict[bytes, Any], on_close: Callable[[], None] | None = None
    ) -> None:
        self.txn = txn
        self.dbs = dbs
        self._on_close = on_close

    def __enter__(self) -> Any:
        return self

    def suffixes(self, db: bytes, prefix: bytes, *, limit: int | None = None) -> list[bytes]:
        """What follows `prefix` in the keys of `db` that start with it, in key order
        (index databases: the value is empty, the key is the whole entry)."""
        cur = self.txn.cursor(db=self.dbs[db])
        found: list[bytes] = []
        if not cur.set_range(prefix):
            return found
        for key in cur.iternext(values=False):
            if not key.startswith(prefix) or (limit is not None and len(found) >= limit):
                break
            found.append(bytes(key[len(prefix) :]))
        return found

    def prefetch(self, db: bytes, keys: list[bytes]) -> None:
        """Read `keys` of `db` ahead, in one round trip where the back end has them
        (PostgreSQL); LMDB reads memory and has nothing to gain."""
        fetch = getattr(self.txn, "prefetch", None)
        if fetch is not None:
            fetch(keys, db=self.dbs[db])

    def __exit__(self, *exc: object) -> None:
        self.txn.abort()
        done, self._on_close = self._on_close, None
        if done is not None:
            done()
