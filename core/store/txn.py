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

    def __exit__(self, *exc: object) -> None:
        self.txn.abort()
        done, self._on_close = self._on_close, None
        if done is not None:
            done()
