"""The primitive interface every store back end gives the domain modules: ordered
byte keys to byte values in named tables, point reads and writes, and a cursor.

It is the part of py-lmdb's Transaction and Cursor that the domains use, so the LMDB
back end passes its own transactions through unchanged (the fast path costs nothing)
and the PostgreSQL back end (core/store/pg_kv.py) implements the same calls over SQL
tables. Keys sort as unsigned bytes in both: LMDB's default order, and bytea's in
PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol


class KvCursor(Protocol):
    """A position in one table. Unpositioned until first() or set_range() finds a key;
    iterating an unpositioned cursor starts at the first key."""

    def first(self) -> bool: ...

    def set_range(self, key: bytes) -> bool:
        """Move to the first key >= `key`; False (unpositioned) when there is none."""
        ...

    def next(self) -> bool: ...

    def key(self) -> bytes: ...

    def value(self) -> bytes: ...

    def delete(self) -> bool:
        """Delete the current entry and move to the next; False when none follows."""
        ...

    def iternext(self, keys: bool = True, values: bool = True) -> Iterator[Any]:
        """From the current entry on: keys, values, or (key, value) pairs."""
        ...

    def __iter__(self) -> Iterator[tuple[bytes, bytes]]: ...


class KvTxn(Protocol):
    """One transaction: reads see its own writes; nothing is visible elsewhere before
    the commit. `db` is a table handle from the store's handle map (Txn.dbs)."""

    def get(self, key: bytes, default: Any = None, *, db: Any) -> Any: ...

    def put(
        self, key: bytes, value: bytes, *, db: Any, overwrite: bool = True, append: bool = False
    ) -> bool:
        """False, and nothing written, when `overwrite` is off and the key exists (or
        `append` is on and the key is not past the table's last)."""
        ...

    def delete(self, key: bytes, *, db: Any) -> bool: ...

    def pop(self, key: bytes, *, db: Any) -> bytes | None: ...

    def replace(self, key: bytes, value: bytes, *, db: Any) -> bytes | None:
        """Write `value`; return what the key held before (None: nothing)."""
        ...

    def cursor(self, *, db: Any) -> KvCursor: ...

    def abort(self) -> None: ...

    def commit(self) -> None: ...
