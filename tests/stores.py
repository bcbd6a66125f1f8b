"""Both store back ends for the tests: `any_store` is a fresh LMDB environment or a
fresh database on the session's real PostgreSQL cluster (one parametrized fixture), and
`pg_database` a migrated database for tests that configure hanko on PostgreSQL.

The cluster starts once, the first time a test asks for it; every test gets a database
of its own (CREATE DATABASE, then `hanko store migrate`'s migrations as the owner role).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from core.store import LmdbStore, Store, pg_schema
from core.store.pg_store import PgStore
from tests.pg_server import ADMIN_ROLE, RUNTIME_ROLE, PostgresServer

BACKENDS = ("lmdb", "postgresql")
# The environment variable a child process reads the test database's password from.
PASSWORD_ENV = "HANKO_TEST_STORE_PASSWORD"
_names = itertools.count(1)


@dataclass(frozen=True)
class PgDatabase:
    server: PostgresServer
    name: str

    @property
    def password(self) -> str:
        return self.server.password

    @property
    def dsn(self) -> str:
        """The runtime role's DSN (no password in it)."""
        return self.server.dsn(RUNTIME_ROLE, self.name)

    @property
    def admin_dsn(self) -> str:
        return self.server.dsn(ADMIN_ROLE, self.name)

    def open(self, **kwargs: Any) -> PgStore:
        return PgStore(self.dsn, password=self.password, **kwargs)

    def admin(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.admin_dsn, password=self.password, autocommit=True)


def new_database(server: PostgresServer, *, migrate: bool = True) -> PgDatabase:
    db = PgDatabase(server, f"hanko_{os.getpid()}_{next(_names)}")
    server.create_database(db.name)
    if migrate:
        with db.admin() as conn:
            pg_schema.migrate(conn, runtime_role=RUNTIME_ROLE)
    return db


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer()
    yield server
    server.close()


@pytest.fixture
def pg_database(postgres: PostgresServer) -> PgDatabase:
    return new_database(postgres)


def open_any(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Store | PgStore:
    if backend == "lmdb":
        return LmdbStore(tmp_path / "lmdb", create=True, map_size=1 << 28)
    return new_database(request.getfixturevalue("postgres")).open()


@pytest.fixture(params=BACKENDS)
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store | PgStore]:
    """A fresh store on each back end."""
    store = open_any(request.param, tmp_path, request)
    yield store
    store.close()


def locator(store: Store | PgStore) -> tuple[str, dict[str, str]]:
    """How a child process opens the same store: a path or a DSN, and its environment
    (the password, never on the command line)."""
    if isinstance(store, PgStore):
        password = store._kwargs.get("password", "")
        return store.dsn, {**os.environ, PASSWORD_ENV: password}
    return str(store.path), dict(os.environ)


def reopen(where: str) -> Store | PgStore:
    """In a child: the store `locator` named."""
    if where.startswith("postgresql://"):
        return PgStore(where, password=os.environ[PASSWORD_ENV])
    return LmdbStore(Path(where))
