"""A whole store from one back end to another (LMDB to PostgreSQL and back): every table,
row for row, read from one snapshot of the source and written in batches, each batch one
commit. Both back ends hold the same keys and the same records (core/store/kv.py), so
nothing is decoded on the way. The target must be empty; the copy is checked by counting
every table of the target against the rows read. Copy a store nothing writes meanwhile
(hanko serve stopped): what is committed after the snapshot is not in the copy."""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from core.base.errors import StoreError
from core.store.backend import Store
from core.store.keys import DB_NAMES, SCHEMA_KEY
from core.store.pg_schema import APPEND_ONLY
from core.store.transactions import WriteTxn

BATCH_ROWS = 5000


class CopyReport(msgspec.Struct, frozen=True):
    tables: dict[str, int]  # rows copied per table
    rows: int
    seconds: float


def _rows_of(store: Store) -> dict[str, int]:
    """Rows per table, the back end's own schema version aside."""
    counts = store.stat()
    if store.backend == "lmdb":
        counts["meta"] -= 1  # SCHEMA_KEY
    return counts


def copy_store(
    source: Store,
    target: Store,
    *,
    clock: Callable[[], float],
    progress: Callable[[str, int], None] | None = None,
) -> CopyReport:
    """Copy `source` into the empty `target`; StoreError if the target holds anything
    or the counts differ afterwards."""
    if any(_rows_of(target).values()):
        raise StoreError("the target store is not empty: hanko store copy never overwrites one")
    started = clock()
    copied: dict[str, int] = {}
    with source.read() as snapshot:
        for name in DB_NAMES:
            n = 0
            batch: list[tuple[bytes, bytes]] = []
            cursor = snapshot.txn.cursor(db=snapshot.dbs[name])
            for key, value in cursor:
                if name == b"meta" and key == SCHEMA_KEY:
                    continue  # each back end keeps its own schema version
                batch.append((bytes(key), bytes(value)))
                if len(batch) >= BATCH_ROWS:
                    target.write(_put_all(name, batch))
                    n += len(batch)
                    batch = []
            if batch:
                target.write(_put_all(name, batch))
                n += len(batch)
            copied[name.decode()] = n
            if progress is not None:
                progress(name.decode(), n)
    have = _rows_of(target)
    differ = [
        f"{t}: {n} read from the source, {have.get(t)} in the target"
        for t, n in copied.items()
        if have.get(t) != n
    ]
    if differ:
        raise StoreError("the copy does not match its source: " + "; ".join(differ))
    return CopyReport(tables=copied, rows=sum(copied.values()), seconds=round(clock() - started, 3))


def _put_all(name: bytes, rows: list[tuple[bytes, bytes]]) -> Callable[[WriteTxn], None]:
    append = name in APPEND_ONLY

    def op(txn: WriteTxn) -> None:
        db = txn.dbs[name]
        for key, value in rows:
            if not txn.txn.put(key, value, db=db, append=append):
                raise StoreError(f"{name.decode()}: key {key.hex()} is already in the target")

    return op
