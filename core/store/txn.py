"""The transaction every domain module of the store extends: an LMDB transaction and
the named databases it may touch. ReadTxn and WriteTxn are the domains put together."""

from __future__ import annotations

from typing import Any


class Txn:
    """A transaction over the store's databases. Closing it releases the reader slot
    (or, for a write, abandons what was not committed)."""

    def __init__(self, txn: Any, dbs: dict[bytes, Any]) -> None:
        self.txn = txn
        self.dbs = dbs

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.txn.abort()
