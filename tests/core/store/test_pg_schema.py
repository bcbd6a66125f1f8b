"""The PostgreSQL schema's steps: the conversion of the key-value tables to typed ones
keeps every row exactly (records and the index tables PostgreSQL now keeps), which
hanko runs on which schema, and what `migrate` holds back while older hanko are
connected."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg import sql

from core.base.errors import SchemaMismatch, StepWaits
from core.store import LmdbStore, pg_schema
from core.store.keys import DB_NAMES, SCHEMA_KEY
from core.store.records import (
    AUDIT,
    AcmeAuthzRecord,
    AcmeOrderRecord,
    DomainRecord,
    LedgerEntry,
    OrgRecord,
)
from tests import search_data as data
from tests.pg_server import RUNTIME_ROLE, PostgresServer
from tests.stores import PgDatabase, new_database

NOW = data.NOW


def everything(txn: Any) -> None:
    """Organizations, domain validations, ledger movements and ACME orders beside the
    certificates: a row of every typed table, and of every index they feed."""
    for n in range(6):
        txn.put_org(
            OrgRecord(id=f"org{n}", level="ev" if n % 2 else "ov", organization=f"Org {n} K.K.",
                      country="JP", state=None if n == 3 else "Tokyo-to", locality="Chiyoda-ku",
                      validated_at=NOW - n, account=f"acct{n % 5}",
                      jurisdiction_country="JP" if n % 2 else None),
            at_us=NOW * 1_000_000, actor="test",
        )  # fmt: skip
        for d in range(3):
            txn.put_domain(
                DomainRecord(org_id=f"org{n}", domain=f"d{d}.example{n}.co.jp",
                             validated_at=NOW - d, method="dns-change",
                             evidence='{"seen": "txt"}', challenge=f"ch{d}"),
                at_us=NOW * 1_000_000, actor="test",
            )  # fmt: skip
    for n in range(20):
        txn.append_ledger(
            LedgerEntry(seq=0, at=NOW + n, account=f"acct{n % 5}", license=f"lic{n % 3}",
                        movement="consume" if n % 2 else "purchase", amount=-1 if n % 2 else 10,
                        actor="test", serial="" if n % 2 == 0 else f"{n:x}",
                        term_end=0 if n % 4 else NOW + 86400)
        )  # fmt: skip
    for n in range(8):
        txn.put_acme_order(
            AcmeOrderRecord(id=f"order{n}", acme_account=f"acme{n % 2}",
                            names=[f"n{n}.example.co.jp", "*.example.co.jp"][: 1 + n % 2],
                            authz=[f"authz{n}"], status="pending", expires=NOW + 3600,
                            created_at=NOW + n),
            [AcmeAuthzRecord(id=f"authz{n}", acme_account=f"acme{n % 2}", name="x.example",
                             wildcard=False, status="pending", expires=NOW + 3600)],
            at_us=NOW * 1_000_000,
        )  # fmt: skip


def rows(store: Any, name: bytes) -> list[tuple[bytes, bytes]]:
    with store.read() as r:
        return [
            (bytes(k), bytes(v))
            for k, v in r.txn.cursor(db=r.dbs[name])
            if not (name == b"meta" and k == SCHEMA_KEY)
        ]


@pytest.fixture(scope="module")
def lmdb_store(tmp_path_factory: pytest.TempPathFactory) -> Any:
    store = LmdbStore(tmp_path_factory.mktemp("kv") / "lmdb", create=True, map_size=1 << 30)
    data.fill(store, data.CERTS[:400])
    store.write(everything)
    yield store
    store.close()


def key_value_database(postgres: PostgresServer, source: Any) -> PgDatabase:
    """A database at schema 3 (every table key-value) holding `source`'s rows."""
    db = new_database(postgres, migrate=False)
    with db.admin() as conn:
        pg_schema.migrate(conn, runtime_role=RUNTIME_ROLE, to=3)
        for name in DB_NAMES:
            found = rows(source, name)
            if found:
                insert = sql.SQL("INSERT INTO {} (k, v) SELECT * FROM unnest(%s, %s)")
                conn.execute(
                    insert.format(sql.Identifier(name.decode())),
                    ([k for k, _ in found], [v for _, v in found]),
                )
    return db


def test_converting_key_value_tables_keeps_every_row(
    lmdb_store: Any, postgres: PostgresServer
) -> None:
    db = key_value_database(postgres, lmdb_store)
    with db.admin() as conn:
        plan = pg_schema.plan(conn)
        assert [s["version"] for s in plan] == [4, 5, 6]
        assert plan[0]["kind"] == "offline"
        assert plan[0]["rows"] == sum(
            len(rows(lmdb_store, n))
            for n in (b"certs", b"orgs", b"domains", b"audit", b"ledger", b"acme_orders")
        )
        assert pg_schema.migrate(conn, runtime_role=RUNTIME_ROLE) == [4, 5, 6]
        for old in ("certs", "expiry", "ledger_kv", "domain_orgs"):
            assert conn.execute("SELECT to_regclass(%s)", (old,)).fetchone() == (None,)
        # Typed: SQL answers what the records hold.
        assert conn.execute(
            "SELECT count(*) FROM certificates WHERE status = 'revoked' AND profile = 'ev'"
        ).fetchone() == (sum(1 for c in data.CERTS[:400] if c.revoked and c.profile == "ev"),)
        assert conn.execute(
            "SELECT count(*) FROM certificates WHERE key_type IS NULL"
        ).fetchone() == (0,)
    with db.open() as pg:
        for name in DB_NAMES:
            if name == b"audit":
                # jsonb keeps a detail's keys in its own order: the same entries.
                assert [(k, AUDIT.decode(v)) for k, v in rows(pg, name)] == [
                    (k, AUDIT.decode(v)) for k, v in rows(lmdb_store, name)
                ]
            else:
                assert rows(pg, name) == rows(lmdb_store, name), name.decode()


def test_which_hanko_runs_on_which_schema(postgres: PostgresServer) -> None:
    db = new_database(postgres, migrate=False)
    with db.admin() as conn:
        with pytest.raises(SchemaMismatch, match="no hanko schema"):
            pg_schema.check(conn, "the store")
        pg_schema.migrate(conn, runtime_role=RUNTIME_ROLE, to=4)
        # This hanko needs step 5 (its last that is not a contract).
        with pytest.raises(SchemaMismatch, match="needs 5: run `hanko store migrate`"):
            pg_schema.check(conn, "the store")
        pg_schema.migrate(conn, runtime_role=RUNTIME_ROLE, to=5)
        assert pg_schema.check(conn, "the store") == 5
        pg_schema.migrate(conn, runtime_role=RUNTIME_ROLE)
        assert pg_schema.check(conn, "the store") == 6
        # A step of a newer hanko this one can run beside, then one it cannot.
        conn.execute("INSERT INTO hanko_migrations (version, name, oldest_code) VALUES (7, 'x', 6)")
        assert pg_schema.check(conn, "the store") == 6
        conn.execute("INSERT INTO hanko_migrations (version, name, oldest_code) VALUES (8, 'y', 8)")
        with pytest.raises(SchemaMismatch, match="no hanko older than schema 8 runs on"):
            pg_schema.check(conn, "the store")


def test_a_contract_step_waits_for_older_hanko(postgres: PostgresServer) -> None:
    db = new_database(postgres, migrate=False)
    with db.admin() as conn:
        pg_schema.migrate(conn, runtime_role=RUNTIME_ROLE, to=4)
    # A hanko of schema 4 holds a connection.
    older = psycopg.connect(db.dsn, password=db.password, application_name="hanko (schema 4)")
    try:
        with db.admin() as conn:
            plan = {s["version"]: s["waits_for"] for s in pg_schema.plan(conn)}
            assert plan[5] == ""
            assert "connections 1 of schema 4 are open" in plan[6]
            with pytest.raises(StepWaits) as waits:
                pg_schema.migrate(conn, runtime_role=RUNTIME_ROLE)
            assert waits.value.done == [5]
            assert pg_schema.applied(conn) == 5
    finally:
        older.close()
    with db.admin() as conn:
        assert pg_schema.migrate(conn, runtime_role=RUNTIME_ROLE) == [6]


@pytest.mark.parametrize("table", ["audit_log", "ledger"])
def test_the_audit_log_and_the_ledger_only_grow(
    lmdb_store: Any, postgres: PostgresServer, table: str
) -> None:
    db = key_value_database(postgres, lmdb_store)
    with db.admin() as conn:
        pg_schema.migrate(conn, runtime_role=RUNTIME_ROLE)
    t = sql.Identifier(table)
    changes = (
        sql.SQL("UPDATE {} SET actor = 'someone else'").format(t),
        sql.SQL("DELETE FROM {}").format(t),
        sql.SQL("TRUNCATE {}").format(t),
    )
    # The role hanko serves with holds INSERT and SELECT only.
    with psycopg.connect(db.dsn, password=db.password, autocommit=True) as runtime:
        assert runtime.execute(sql.SQL("SELECT count(*) FROM {}").format(t)).fetchone() != (0,)
        for change in changes:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                runtime.execute(change)
    # The owner is refused by the triggers.
    with db.admin() as owner:
        for change in changes:
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                owner.execute(change)
