"""The store's primitive interface (core/store/kv.py) over PostgreSQL tables.

Each store table is a table `(k bytea primary key, v bytea)`. A transaction reads
through to the database and keeps what it read; its writes stay in an overlay that
its reads and cursors see, and go to the database at the commit, as one statement per
table and kind (delete, upsert, insert), so a group of a thousand issuances costs a
few dozen statements, not tens of thousands. A nested transaction (WriteTxn.attempt)
shares the overlay and keeps an undo log: rolling one op back is undoing its entries.

Reads are consistent because nothing changes the database under a transaction: a
write transaction holds the store's write lock (core/store/pg_store.py) from its first
statement, so no other writer commits meanwhile, and a read transaction is one
REPEATABLE READ snapshot.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
from psycopg import sql

from core.base.errors import CommitUnconfirmed, StoreError

# Every hanko write transaction holds this (pg_advisory_xact_lock) until it ends
# (core/store/pg_store.py), and so does a schema step's batch of data work.
WRITE_LOCK = 0x68616E6B6F_02  # "hanko" | 2
_ABSENT = object()  # undo: the key was not in the overlay before
_PAGE_FIRST = 64
_PAGE_MAX = 8192


class Table:
    """A table handle (what Txn.dbs maps a store name to) and its statements, composed
    once. `append_only`: rows are only ever inserted (the audit log, the ledger); its
    writes are plain INSERTs, which the database role may be limited to."""

    __slots__ = (
        "append_only",
        "count",
        "delete",
        "get",
        "get_many",
        "insert",
        "name",
        "page_after",
        "page_from",
    )
    # Rows of a derived table (core/store/pg_typed.py: an index PostgreSQL keeps) are
    # never written: what a transaction puts in one stays in its overlay, for its own
    # reads, and the database derives the same rows from the table they index.
    derived = False

    def __init__(self, name: str, *, append_only: bool = False) -> None:
        self.name = name
        self.append_only = append_only
        t = sql.Identifier(name)
        self.count = sql.SQL("SELECT count(*) FROM {}").format(t)
        self.get = sql.SQL("SELECT v FROM {} WHERE k = %s").format(t)
        self.get_many = sql.SQL("SELECT k, v FROM {} WHERE k = ANY(%s)").format(t)
        self.page_from = sql.SQL("SELECT k, v FROM {} WHERE k >= %s ORDER BY k LIMIT %s").format(t)
        self.page_after = sql.SQL("SELECT k, v FROM {} WHERE k > %s ORDER BY k LIMIT %s").format(t)
        self.delete = sql.SQL("DELETE FROM {} WHERE k = ANY(%s)").format(t)
        insert = "INSERT INTO {} (k, v) SELECT * FROM unnest(%s::bytea[], %s::bytea[])"
        if not append_only:
            insert += " ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v"
        self.insert = sql.SQL(insert).format(t)

    # A row of `get` is (value,); of `get_many` and the pages, (key, value). Typed
    # tables (core/store/pg_typed.py) select columns and make the record from them.
    def value(self, row: tuple[Any, ...]) -> bytes:
        return row[0]  # type: ignore[no-any-return]

    def pairs(self, rows: list[tuple[Any, ...]]) -> list[tuple[bytes, bytes]]:
        return rows

    def params(self, keys: list[bytes], values: list[bytes]) -> tuple[Any, ...]:
        """The parameters of `insert` for these rows."""
        return (keys, values)

    def __repr__(self) -> str:
        return f"Table({self.name!r})"


def first_line(exc: BaseException) -> str:
    """One line for the operator: the server's message, not psycopg's repr."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def database_error(exc: psycopg.Error) -> StoreError:
    return StoreError(f"the PostgreSQL store: {first_line(exc)}")


class _State:
    """What a transaction and its nested ones share."""

    __slots__ = (
        "commit_timeout",
        "conn",
        "known",
        "overlay",
        "pages",
        "release",
        "sorted",
        "writable",
    )

    def __init__(
        self,
        conn: psycopg.Connection[Any],
        *,
        writable: bool,
        release: Any,
        commit_timeout: float = 30.0,
    ) -> None:
        self.conn = conn
        self.writable = writable
        # PostgreSQL's statement_timeout stops before a COMMIT waits for a synchronous
        # standby: past this, the wait is cancelled from here (and the commit refused).
        self.commit_timeout = commit_timeout
        self.release: Callable[[bool], None] = release
        # Per table: key -> value, or None for deleted.
        self.overlay: dict[Table, dict[bytes, bytes | None]] = {}
        # Per table: what the database held (None: no row), as read in this transaction.
        self.known: dict[Table, dict[bytes, bytes | None]] = {}
        # Per table: the overlay's keys in order, rebuilt after a new key arrived.
        self.sorted: dict[Table, list[bytes] | None] = {}
        # Database pages read, by (table, first key, inclusive, size): a second cursor
        # over the same range (the same organization's domains for every certificate
        # of a batch) reads no more.
        self.pages: dict[tuple[Table, bytes, bool, int], list[Any]] = {}

    def query(self, statement: Any, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        try:
            return self.conn.execute(statement, params, binary=True).fetchall()
        except psycopg.Error as exc:
            raise database_error(exc) from exc

    def overlay_keys(self, table: Table) -> list[bytes]:
        keys = self.sorted.get(table)
        if keys is None:
            keys = sorted(self.overlay.get(table, ()))
            self.sorted[table] = keys
        return keys


class PgTxn:
    """One transaction (or a nested one, when `undo` is a list)."""

    __slots__ = ("_parent_undo", "_state", "_undo")

    def __init__(self, state: _State, *, parent: PgTxn | None = None) -> None:
        self._state = state
        self._undo: list[tuple[Table, bytes, object]] | None = None if parent is None else []
        self._parent_undo = None if parent is None else parent._undo

    # -- reads ---------------------------------------------------------------------

    def get(self, key: bytes, default: Any = None, *, db: Table) -> Any:
        ov = self._state.overlay.get(db)
        if ov is not None and key in ov:
            found = ov[key]
            return default if found is None else found
        known = self._state.known.setdefault(db, {})
        if key in known:
            value = known[key]
        else:
            rows = self._state.query(db.get, (key,))
            value = known[key] = db.value(rows[0]) if rows else None
        return default if value is None else value

    def cursor(self, *, db: Table) -> PgCursor:
        return PgCursor(self._state, db, self)

    def prefetch(self, keys: list[bytes], *, db: Table) -> None:
        """Read these keys in one query, for the gets that follow (a group's serials)."""
        known = self._state.known.setdefault(db, {})
        ov = self._state.overlay.get(db, {})
        wanted = [k for k in keys if k not in known and k not in ov]
        if not wanted:
            return
        found = dict(db.pairs(self._state.query(db.get_many, (wanted,))))
        for k in wanted:
            known[k] = found.get(k)

    # -- writes --------------------------------------------------------------------

    def _set(self, db: Table, key: bytes, value: bytes | None) -> None:
        state = self._state
        if not state.writable:
            raise StoreError("store transaction is read-only")
        ov = state.overlay.setdefault(db, {})
        before = ov.get(key, _ABSENT)
        if self._undo is not None:
            self._undo.append((db, key, before))
        if before is _ABSENT:
            state.sorted[db] = None
        ov[key] = value

    def put(
        self,
        key: bytes,
        value: bytes,
        *,
        db: Table,
        overwrite: bool = True,
        append: bool = False,
    ) -> bool:
        if append:
            # The key comes from a counter under the write lock, so it is past the last
            # one; a repeat is refused by the primary key at the commit, which fails
            # the whole transaction rather than overwrite a row.
            ov = self._state.overlay.get(db)
            if ov is not None and ov.get(key) is not None:
                return False
        elif not overwrite and self.get(key, db=db) is not None:
            return False
        self._set(db, key, bytes(value))
        return True

    def delete(self, key: bytes, *, db: Table) -> bool:
        if self.get(key, db=db) is None:
            return False
        self._set(db, key, None)
        return True

    def pop(self, key: bytes, *, db: Table) -> bytes | None:
        value: bytes | None = self.get(key, db=db)
        if value is not None:
            self._set(db, key, None)
        return value

    def replace(self, key: bytes, value: bytes, *, db: Table) -> bytes | None:
        old: bytes | None = self.get(key, db=db)
        self._set(db, key, bytes(value))
        return old

    # -- the end -------------------------------------------------------------------

    def commit(self) -> None:
        if self._undo is not None:
            # A nested transaction's changes become its parent's to undo.
            if self._parent_undo is not None:
                self._parent_undo.extend(self._undo)
            self._undo = []
            return
        state = self._state
        cut: list[bool] = []

        def cut_short() -> None:
            cut.append(True)
            state.conn.cancel_safe()

        watchdog = threading.Timer(state.commit_timeout, cut_short)
        watchdog.daemon = True
        try:
            if state.writable:
                self._flush()
            watchdog.start()
            state.conn.commit()
        except psycopg.Error as exc:
            state.release(False)
            raise database_error(exc) from exc
        finally:
            watchdog.cancel()
        state.release(True)
        if cut:
            # The watchdog cancelled the commit's wait (for a synchronous standby: the
            # only wait statement_timeout does not cut) and the server still reported
            # success: the commit may hold on the primary only, so it is not
            # acknowledged as durable (the server's own warning is in its locale).
            raise CommitUnconfirmed(
                "the commit was not confirmed by the synchronous standby in time: it may"
                " be on the primary only"
            )

    def _flush(self) -> None:
        conn = self._state.conn
        for table, ov in self._state.overlay.items():
            if table.derived:
                continue
            gone = [k for k, v in ov.items() if v is None]
            keys = [k for k, v in ov.items() if v is not None]
            if gone:
                conn.execute(table.delete, (gone,))
            if keys:
                values: list[bytes] = [ov[k] for k in keys]  # type: ignore[misc]
                conn.execute(table.insert, table.params(keys, values))

    def abort(self) -> None:
        if self._undo is not None:
            state = self._state
            for db, key, before in reversed(self._undo):
                ov = state.overlay[db]
                if before is _ABSENT:
                    del ov[key]
                    state.sorted[db] = None
                else:
                    ov[key] = before  # type: ignore[assignment]
            self._undo = []
            return
        self._state.release(False)


class PgCursor:
    """A cursor over the database's rows of one table merged with the overlay.

    Database rows come in pages that grow while a scan goes on; a page stays valid for
    the whole transaction (nothing else writes under it). Each step takes the smaller
    of the next database row the overlay does not shadow and the next overlay key that
    is not a deletion."""

    __slots__ = ("_cur", "_db", "_done", "_lo", "_page", "_rows", "_state", "_txn")

    def __init__(self, state: _State, db: Table, txn: PgTxn) -> None:
        self._state = state
        self._db = db
        self._txn = txn
        self._cur: tuple[bytes, bytes] | None = None
        # The page: rows with keys from `_lo` (inclusive flag) on, all of them up to the
        # last when `_done`.
        self._rows: list[tuple[bytes, bytes]] = []
        self._lo: tuple[bytes, bool] | None = None
        self._done = False
        self._page = _PAGE_FIRST

    def _covers(self, start: bytes, inclusive: bool) -> bool:
        """Whether the page holds the first row from `start` on (or knows there is none)."""
        if self._lo is None:
            return False
        lo, lo_inclusive = self._lo
        if start < lo or (start == lo and inclusive and not lo_inclusive):
            return False
        if self._done:
            return True
        last = self._rows[-1][0]  # a page that is not the last one is never empty
        return start <= last if inclusive else start < last

    def _db_next(self, start: bytes, inclusive: bool) -> tuple[bytes, bytes] | None:
        """The first database row with key >= `start` (> when not inclusive)."""
        if not self._covers(start, inclusive):
            sequential = bool(self._rows) and start >= self._rows[-1][0]
            self._page = min(self._page * 2, _PAGE_MAX) if sequential else _PAGE_FIRST
            cache = self._state.pages
            page_key = (self._db, start, inclusive, self._page)
            rows = cache.get(page_key)
            if rows is None:
                query = self._db.page_from if inclusive else self._db.page_after
                rows = cache[page_key] = self._db.pairs(
                    self._state.query(query, (start, self._page))
                )
            self._rows = rows
            self._lo = (start, inclusive)
            self._done = len(self._rows) < self._page
        rows = self._rows
        i = (bisect.bisect_left if inclusive else bisect.bisect_right)(
            rows, start, key=lambda row: row[0]
        )
        return rows[i] if i < len(rows) else None

    def _find(self, start: bytes, inclusive: bool) -> tuple[bytes, bytes] | None:
        ov = self._state.overlay.get(self._db) or {}
        found = self._db_next(start, inclusive)
        while found is not None and found[0] in ov:
            found = self._db_next(found[0], False)
        if ov:
            keys = self._state.overlay_keys(self._db)
            i = (bisect.bisect_left if inclusive else bisect.bisect_right)(keys, start)
            while i < len(keys):
                value = ov[keys[i]]
                if value is not None:
                    if found is None or keys[i] < found[0]:
                        found = (keys[i], value)
                    break
                i += 1
        self._cur = found
        return found

    def first(self) -> bool:
        return self._find(b"", True) is not None

    def set_range(self, key: bytes) -> bool:
        return self._find(bytes(key), True) is not None

    def next(self) -> bool:
        if self._cur is None:
            return self.first()
        return self._find(self._cur[0], False) is not None

    def key(self) -> bytes:
        return b"" if self._cur is None else self._cur[0]

    def value(self) -> bytes:
        return b"" if self._cur is None else self._cur[1]

    def delete(self) -> bool:
        if self._cur is None:
            return False
        key = self._cur[0]
        self._txn._set(self._db, key, None)
        return self._find(key, False) is not None

    def iternext(self, keys: bool = True, values: bool = True) -> Iterator[Any]:
        if self._cur is None and not self.first():
            return
        while self._cur is not None:
            k, v = self._cur
            if keys and values:
                yield k, v
            elif keys:
                yield k
            else:
                yield v
            if not self.next():
                return

    def __iter__(self) -> Iterator[tuple[bytes, bytes]]:
        return self.iternext()
