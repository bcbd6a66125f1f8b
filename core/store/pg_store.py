"""The store on PostgreSQL: the same transactions as the LMDB Store (core/store/
environment.py) over a database that several hanko processes, on one host or several,
share.

Write transactions take one transaction-level advisory lock first, so commits follow
one another as they do in LMDB (one writer at a time) whichever process makes them:
serials stay unique, counters (CRL numbers, ledger and audit sequences, the replication
feed) only grow and number commits in commit order, and a licence balance read in a
transaction cannot be spent by another before it commits. The group-commit writer
makes that one transaction per group, so the lock is taken once per group, not once
per certificate. A commit returns once PostgreSQL reports it durable as
`synchronous_commit` asks (on: flushed here and on a synchronous standby, when one is
configured; remote_apply: applied there too).

Connections come from a psycopg pool; each transaction holds one in the thread that
runs it (the writer's worker thread, or the caller's for reads).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg
import psycopg_pool
from psycopg import IsolationLevel, sql

from core.base.errors import StoreError
from core.store import pg_schema, pg_typed
from core.store.keys import DB_NAMES
from core.store.pg_kv import WRITE_LOCK, PgTxn, _State, database_error, first_line
from core.store.pg_leader import PgLeaderLock
from core.store.pg_search import search
from core.store.pg_view import PgOcspView
from core.store.search import CertPage, CertQuery
from core.store.transactions import Done, Failed, ReadTxn, WriteTxn

T = TypeVar("T")


class _Nesting:
    """What WriteTxn.attempt calls `env`: begin(write=True, parent=txn) gives a nested
    transaction of `parent` (an undo mark on the shared overlay)."""

    __slots__ = ()

    def begin(self, *, write: bool, parent: PgTxn) -> PgTxn:
        del write
        return PgTxn(parent._state, parent=parent)


def connection_kwargs(
    *,
    password: str | None,
    connect_timeout: float,
    statement_timeout: float,
    synchronous_commit: str,
    application_name: str = "hanko",
) -> dict[str, Any]:
    """libpq parameters beside the DSN: the password never goes in the DSN (it would
    show in process listings and logs); a dead peer is noticed by keepalives."""
    kwargs: dict[str, Any] = {
        "connect_timeout": max(1, round(connect_timeout)),
        # Which hanko (by the schema it was built for) holds the connection: `hanko
        # store migrate` holds a step back while an older one that cannot run on it is
        # connected.
        "application_name": f"{application_name} (schema {pg_schema.latest()})",
        "keepalives": 1,
        "keepalives_idle": 5,
        "keepalives_interval": 2,
        "keepalives_count": 3,
        # The server's side of keepalives too: a connection whose host vanished ends in
        # seconds, and with it the leader lock it held.
        "options": (
            f"-c statement_timeout={int(statement_timeout * 1000)}"
            f" -c synchronous_commit={synchronous_commit}"
            " -c tcp_keepalives_idle=5 -c tcp_keepalives_interval=2 -c tcp_keepalives_count=3"
        ),
    }
    if password is not None:
        kwargs["password"] = password
    return kwargs


class PgStore:
    """An open PostgreSQL store. Use `read()` and `write()` for transactions."""

    backend = "postgresql"
    remote = True  # reads wait on a network (run them off the event loop)

    def __init__(
        self,
        dsn: str,
        *,
        password: str | None = None,
        readonly: bool = False,
        pool_size: int = 8,
        connect_timeout: float = 5.0,
        statement_timeout: float = 30.0,
        synchronous_commit: str = "on",
        application_name: str = "hanko",
    ) -> None:
        self.dsn = dsn
        self.readonly = readonly
        self.full = False  # a database has no map to fill; a full disk is a StoreError
        self._timeout = connect_timeout
        self._statement_timeout = statement_timeout
        self._kwargs = connection_kwargs(
            password=password,
            connect_timeout=connect_timeout,
            statement_timeout=statement_timeout,
            synchronous_commit=synchronous_commit,
            application_name=application_name,
        )
        # One direct connection first: a wrong DSN, password or schema is one clear
        # error now, not a pool retrying in the background.
        with self.connect(autocommit=True) as conn:
            self.schema = pg_schema.check(conn, self.where)
            self._dbs: dict[bytes, Any] = pg_typed.tables(self.schema)
            missing = pg_schema.missing_tables(conn)
            if missing:
                raise StoreError(f"{self.where} lacks the tables {', '.join(missing)}")
        self._pool = psycopg_pool.ConnectionPool(
            dsn,
            kwargs=self._kwargs,
            min_size=1,
            max_size=max(2, pool_size),
            timeout=connect_timeout,
            open=False,
            name="hanko-store",
        )
        self._pool.open()

    @property
    def where(self) -> str:
        """The database, for messages: host, port and name (never the password)."""
        info = psycopg.conninfo.conninfo_to_dict(self.dsn)
        host, port, db = info.get("host", "localhost"), info.get("port", "5432"), info.get("dbname")
        return f"the PostgreSQL store {db or ''} on {host}:{port}".replace("store  on", "store on")

    def connect(self, *, autocommit: bool = False, raw: bool = False) -> psycopg.Connection[Any]:
        """A connection of its own (outside the pool), e.g. for the leader lock;
        `raw`: psycopg's error, not a StoreError."""
        if raw:
            return psycopg.connect(self.dsn, autocommit=autocommit, **self._kwargs)
        try:
            return psycopg.connect(self.dsn, autocommit=autocommit, **self._kwargs)
        except psycopg.Error as exc:
            raise StoreError(f"cannot connect to {self.where}: {first_line(exc)}") from exc

    def _conn(self) -> psycopg.Connection[Any]:
        try:
            return self._pool.getconn()
        except psycopg_pool.PoolTimeout as exc:
            raise StoreError(f"{self.where} gave no connection within {self._timeout:g} s") from exc

    def _state(self, *, writable: bool) -> _State:
        conn = self._conn()
        pool = self._pool

        def release(ok: bool) -> None:
            if not ok:
                with contextlib.suppress(psycopg.Error):  # broken: the pool drops it
                    conn.rollback()
            pool.putconn(conn)

        try:
            conn.read_only = not writable
            conn.isolation_level = (
                IsolationLevel.READ_COMMITTED if writable else IsolationLevel.REPEATABLE_READ
            )
            state = _State(
                conn, writable=writable, release=release, commit_timeout=self._statement_timeout
            )
            if writable:
                state.query("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
        except BaseException:
            release(False)
            raise
        return state

    def close(self) -> None:
        self._pool.close()

    def __enter__(self) -> PgStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def read(self) -> ReadTxn:
        return ReadTxn(PgTxn(self._state(writable=False)), self._dbs)

    def write(self, op: Callable[[WriteTxn], T]) -> T:
        """Run `op` in one write transaction and commit it; one commit per call."""
        [result] = self._commit(lambda group: [op(group)])
        return result

    def commit_group(self, ops: list[Callable[[WriteTxn], Any]]) -> list[Done[Any] | Failed]:
        """Many ops in one commit, each in a nested transaction (Store.commit_group)."""
        return self._commit(lambda group: [group.attempt(op) for op in ops])

    def _commit(self, run: Callable[[WriteTxn], list[T]]) -> list[T]:
        if self.readonly:
            raise StoreError("store is open read-only")
        txn = PgTxn(self._state(writable=True))
        try:
            results = run(WriteTxn(txn, self._dbs, _Nesting()))
        except BaseException:
            txn.abort()
            raise
        txn.commit()
        return results

    def search_certs(self, query: CertQuery, now: int) -> CertPage:
        """One SQL query over the typed certificates table (core/store/pg_search.py)."""
        with self.read() as r:
            state = r.txn._state
            try:
                return search(state.conn, query, now, schema=self.schema)
            except psycopg.Error as exc:
                raise database_error(exc) from exc

    def leader_lock(self) -> PgLeaderLock:
        return PgLeaderLock(lambda: self.connect(autocommit=True, raw=True), self.where)

    def ocsp_view(self) -> PgOcspView:
        return PgOcspView(lambda: self.connect(autocommit=True, raw=True), time.monotonic)

    def stat(self) -> dict[str, int]:
        """Rows per table."""
        with self.read() as r:
            state = r.txn._state
            counts = sql.SQL(" UNION ALL ").join(
                sql.SQL("SELECT {}, ({})").format(sql.Literal(n.decode()), self._dbs[n].count)
                for n in DB_NAMES
            )
            return {str(name): int(count) for name, count in state.query(counts, ())}

    def map_use(self) -> dict[str, int]:
        """The database's size on disk (metrics; LMDB reports its map here)."""
        with self.read() as r:
            rows = r.txn._state.query("SELECT pg_database_size(current_database())", ())
        size = int(rows[0][0])
        return {"used": size, "size": size, "max": 0}
