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

from core.base.errors import SchemaMismatch, StoreError
from core.store.keys import DB_NAMES, MAX_DBS, SCHEMA_KEY
from core.store.ocsp_view import OcspView
from core.store.records import SCHEMA_VERSION
from core.store.transactions import Done, Failed, ReadTxn, WriteTxn

T = TypeVar("T")
# The store holds every certificate, licence and audit entry: its owner alone reads it.
FILE_MODE = 0o600
DIR_MODE = 0o700


def _keep_private(path: Path) -> None:
    """The folder 0700 and the LMDB files 0600, also for a store made before that rule
    or copied with other modes."""
    if path.stat().st_mode & 0o777 != DIR_MODE:
        path.chmod(DIR_MODE)
    for name in ("data.mdb", "lock.mdb"):
        f = path / name
        if f.exists() and f.stat().st_mode & 0o777 != FILE_MODE:
            f.chmod(FILE_MODE)


class Store:
    """An open LMDB environment. Use `read()` and `write()` for transactions."""

    def __init__(
        self,
        path: Path,
        *,
        map_size: int = 8 << 30,
        readonly: bool = False,
        create: bool = False,
    ) -> None:
        self.path = path
        self.readonly = readonly
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

    def close(self) -> None:
        self.env.close()

    def ocsp_view(self) -> OcspView:
        """The read-only view the OCSP responder answers from (core/store/ocsp_view.py)."""
        return OcspView(self.env, self._dbs)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def read(self) -> ReadTxn:
        return ReadTxn(self.env.begin(write=False, buffers=False), self._dbs)

    def write(self, op: Callable[[WriteTxn], T]) -> T:
        """Run `op` in one write transaction and commit it durably; one commit per call.

        The group-commit writer is the fast path for servers; this is for the CLI, for
        bootstrap and for the one-commit-per-write baseline.
        """
        if self.readonly:
            raise StoreError("store is open read-only")
        txn = self.env.begin(write=True)
        try:
            result = op(WriteTxn(txn, self._dbs, self.env))
        except BaseException:
            txn.abort()
            raise
        txn.commit()
        return result

    def commit_group(self, ops: list[Callable[[WriteTxn], Any]]) -> list[Done[Any] | Failed]:
        """Run many ops in one durable commit; each op in a nested transaction.

        An op that raises is rolled back alone and its exception returned in its slot;
        the others still commit. If the commit itself fails, every op fails with it.
        """
        if self.readonly:
            raise StoreError("store is open read-only")
        txn = self.env.begin(write=True)
        try:
            group = WriteTxn(txn, self._dbs, self.env)
            results = [group.attempt(op) for op in ops]
            txn.commit()
        except BaseException:
            txn.abort()
            raise
        return results

    def stat(self) -> dict[str, int]:
        with self.env.begin() as txn:
            return {name.decode(): txn.stat(self._dbs[name])["entries"] for name in DB_NAMES}
