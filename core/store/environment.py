"""The LMDB environment: opening it, its schema, and the transactions over it.

One environment, opened durable (sync and metasync on): a commit that returns is on
disk. Other processes (OCSP responders, readers) open it read-only. Every write goes
through a WriteTxn so that the store's invariants (serials never repeat, counters only
grow, an audit entry for every state change) live in one place.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import lmdb

from core.base.errors import SchemaMismatch, StoreError, StoreFull
from core.base.units import format_bytes
from core.store.gate import ResizeGate
from core.store.keys import DB_NAMES, MAX_DBS, SCHEMA_KEY
from core.store.leader_lock import SoleWriter
from core.store.ocsp_view import OcspView
from core.store.records import SCHEMA_VERSION
from core.store.search import CertPage, CertQuery, scan
from core.store.transactions import Done, Failed, ReadTxn, WriteTxn

T = TypeVar("T")
# The store holds every certificate, licence and audit entry: its owner alone reads it.
FILE_MODE = 0o600
DIR_MODE = 0o700
# How long a map resize waits for open transactions (a CRL snapshot) to close.
RESIZE_WAIT_SECONDS = 10.0


def _keep_private(path: Path) -> None:
    """The folder 0700 and the LMDB files 0600, also for a store made before that rule
    or copied with other modes."""
    if path.stat().st_mode & 0o777 != DIR_MODE:
        path.chmod(DIR_MODE)
    for name in ("data.mdb", "lock.mdb"):
        f = path / name
        if f.exists() and f.stat().st_mode & 0o777 != FILE_MODE:
            f.chmod(FILE_MODE)


class LmdbStore:
    """An open LMDB environment. Use `read()` and `write()` for transactions."""

    backend = "lmdb"
    remote = False  # reads are memory-mapped: nothing to take off the event loop

    def __init__(
        self,
        path: Path,
        *,
        map_size: int = 8 << 30,
        max_map_size: int | None = None,
        readonly: bool = False,
        create: bool = False,
    ) -> None:
        """`map_size` is the map reserved at open; a write that does not fit doubles
        it, up to `max_map_size` (default: no growth). Past that, writes raise
        StoreFull and reads go on."""
        self.path = path
        self.readonly = readonly
        self.max_map_size = max(map_size, max_map_size or map_size)
        self._gate = ResizeGate()
        self._full = False
        if not readonly and not create and not (path / "data.mdb").exists():
            raise StoreError(f"no LMDB environment at {path} (run `hanko init` first)")
        try:
            self.env = lmdb.open(
                str(path),
                map_size=map_size,
                subdir=True,
                readonly=readonly,
                create=create and not readonly,
                max_dbs=MAX_DBS,
                max_readers=512,
                sync=True,
                metasync=True,
                lock=True,
                mode=FILE_MODE,
            )
        except lmdb.Error as exc:
            raise StoreError(f"cannot open LMDB environment at {path}: {exc}") from exc
        if not readonly:
            _keep_private(path)
        try:
            self._dbs = self._open_dbs(create=create and not readonly)
            self._check_schema(create=create and not readonly)
            if not readonly:
                self._index_domains()
        except BaseException:
            self.env.close()
            raise

    def _open_dbs(self, *, create: bool) -> dict[bytes, Any]:
        dbs: dict[bytes, Any] = {}
        try:
            # meta first: a folder that is not a hanko store is refused before anything
            # is created in it.
            dbs[b"meta"] = self.env.open_db(b"meta", create=create)
        except lmdb.NotFoundError as exc:
            raise StoreError(f"{self.path} is not a hanko store (missing databases)") from exc
        for name in DB_NAMES[1:]:
            try:
                # Databases added by newer code appear on the first writable open; without
                # a transaction py-lmdb commits each handle in its own one.
                dbs[name] = self.env.open_db(name, create=not self.readonly)
            except lmdb.NotFoundError as exc:
                raise StoreError(
                    f"{self.path} lacks the {name.decode()} database: open it writable once"
                ) from exc
        return dbs

    def _check_schema(self, *, create: bool) -> None:
        with self.env.begin(write=create) as txn:
            raw = txn.get(SCHEMA_KEY, db=self._dbs[b"meta"])
            if raw is None and create:
                txn.put(SCHEMA_KEY, str(SCHEMA_VERSION).encode(), db=self._dbs[b"meta"])
                return
        if raw is None:
            raise SchemaMismatch(f"{self.path} has no schema version")
        if int(raw) != SCHEMA_VERSION:
            raise SchemaMismatch(
                f"{self.path} has schema version {int(raw)}, this hanko needs {SCHEMA_VERSION}"
            )

    def _index_domains(self) -> None:
        """Fill the domain -> organizations index of a store made before it existed.
        Looked at in a read transaction: every writable open (each CLI command) comes
        here, and only an old store needs the writer's lock."""
        with self.env.begin() as txn:
            indexed = txn.stat(self._dbs[b"domain_orgs"])["entries"]
            if indexed or not txn.stat(self._dbs[b"domains"])["entries"]:
                return
        with self.env.begin(write=True) as txn:
            for key in txn.cursor(db=self._dbs[b"domains"]).iternext(values=False):
                org, _, domain = bytes(key).partition(b"\0")
                txn.put(domain + b"\0" + org, b"", db=self._dbs[b"domain_orgs"])

    def close(self) -> None:
        self.env.close()

    def leader_lock(self) -> SoleWriter:
        return SoleWriter()

    def ocsp_view(self) -> OcspView:
        """The read-only view the OCSP responder answers from (core/store/ocsp_view.py)."""
        return OcspView(self.env, self._dbs)

    def __enter__(self) -> LmdbStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def full(self) -> bool:
        """A write found the map at max_map_size. From then on every write is refused
        at once, big or small, until the store is opened with a higher limit: what fits
        by chance is no promise, and an operator has to act either way."""
        return self._full

    def _refuse_full(self) -> StoreFull:
        self._full = True
        return StoreFull(
            f"the store is full: its map reached [store] max_map_size"
            f" ({format_bytes(self.max_map_size)}); writes are refused until it is raised"
        )

    def map_size(self) -> int:
        return int(self.env.info()["map_size"])

    def _begin(self, *, write: bool) -> Any:
        """A transaction inside the gate (the caller leaves it when the transaction
        ends). A map grown by another process is adopted first."""
        while True:
            self._gate.enter()
            try:
                return self.env.begin(write=write, buffers=False)
            except lmdb.MapResizedError:
                self._gate.leave()
                self._gate.exclusive(lambda: self.env.set_mapsize(0), timeout=RESIZE_WAIT_SECONDS)
            except BaseException:
                self._gate.leave()
                raise

    def _grow(self) -> None:
        """Double the map, up to max_map_size; StoreFull past it."""
        current = self.map_size()
        if current >= self.max_map_size:
            raise self._refuse_full()
        target = min(current * 2, self.max_map_size)
        if not self._gate.exclusive(
            lambda: self.env.set_mapsize(target), timeout=RESIZE_WAIT_SECONDS
        ):
            raise StoreError("the store's map could not grow: a reader stayed open")

    def search_certs(self, query: CertQuery, now: int) -> CertPage:
        """A search by walking the certificates (core/store/search.py)."""
        with self.read() as txn:
            return scan(txn, query, now)

    def read(self) -> ReadTxn:
        return ReadTxn(self._begin(write=False), self._dbs, self._gate.leave)

    def write(self, op: Callable[[WriteTxn], T]) -> T:
        """Run `op` in one write transaction and commit it durably; one commit per call.

        The group-commit writer is the fast path for servers; this is for the CLI, for
        bootstrap and for the one-commit-per-write baseline.
        """
        [result] = self._commit(lambda group: [op(group)])
        return result

    def commit_group(self, ops: list[Callable[[WriteTxn], Any]]) -> list[Done[Any] | Failed]:
        """Run many ops in one durable commit; each op in a nested transaction.

        An op that raises is rolled back alone and its exception returned in its slot;
        the others still commit. If the commit itself fails, every op fails with it.
        """
        return self._commit(lambda group: [group.attempt(op) for op in ops])

    def _commit(self, run: Callable[[WriteTxn], list[T]]) -> list[T]:
        """One durable write transaction. A map too small for it is grown and the whole
        transaction run again (nothing of the first try was kept)."""
        if self.readonly:
            raise StoreError("store is open read-only")
        if self._full:
            raise self._refuse_full()
        while True:
            txn = self._begin(write=True)
            try:
                results = run(WriteTxn(txn, self._dbs, self.env))
                txn.commit()
            except lmdb.MapFullError:
                txn.abort()
                self._gate.leave()
                self._grow()
                continue
            except BaseException:
                txn.abort()
                self._gate.leave()
                raise
            self._gate.leave()
            return results

    def map_use(self) -> dict[str, int]:
        """Bytes of the map in use, reserved now, and at most (metrics)."""
        info, page = self.env.info(), self.env.stat()["psize"]
        return {
            "used": (info["last_pgno"] + 1) * page,
            "size": info["map_size"],
            "max": self.max_map_size,
        }

    def stat(self) -> dict[str, int]:
        with self.env.begin() as txn:
            return {name.decode(): txn.stat(self._dbs[name])["entries"] for name in DB_NAMES}
