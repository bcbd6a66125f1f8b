"""The PostgreSQL store's schema: versioned migrations (core/store/migrations/NNNN_name.sql,
applied in order, each once, each in its own transaction) and the privileges of the
role hanko runs as.

Migrations run as the role that owns the tables (`[store] admin_dsn`, or `dsn` when
they are the same role). The role hanko serves with gets what it needs and no more:
on the audit log and the ledger, INSERT and SELECT only.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import Any

import psycopg
from psycopg import sql

from core.base.errors import SchemaMismatch
from core.store.keys import DB_NAMES

APPEND_ONLY = (b"audit", b"ledger")
MIGRATIONS_TABLE = "hanko_migrations"
# Two migrators at once take turns on this (pg_advisory_xact_lock).
MIGRATE_LOCK = 0x68616E6B6F_01  # "hanko" | 1
_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


def migrations() -> list[tuple[int, str, str]]:
    """(version, name, SQL) of every migration in the package, in order: versions
    run 1, 2, 3... without a gap (a gap is a packaging mistake, refused)."""
    found = []
    for entry in resources.files("core.store").joinpath("migrations").iterdir():
        match = _FILE.match(entry.name)
        if match:
            found.append((int(match[1]), match[2], entry.read_text()))
    found.sort()
    if [v for v, _, _ in found] != list(range(1, len(found) + 1)):
        raise SchemaMismatch("the packaged store migrations are not numbered 1, 2, 3...")
    return found


def latest() -> int:
    return len(migrations())


def applied(conn: psycopg.Connection[Any]) -> int:
    """The schema version of the database (0: no hanko schema yet)."""
    row = conn.execute("SELECT to_regclass(%s)", (MIGRATIONS_TABLE,)).fetchone()
    if row is None or row[0] is None:
        return 0
    row = conn.execute(
        sql.SQL("SELECT coalesce(max(version), 0) FROM {}").format(sql.Identifier(MIGRATIONS_TABLE))
    ).fetchone()
    return int(row[0]) if row is not None else 0


def check(conn: psycopg.Connection[Any], where: str) -> None:
    """SchemaMismatch unless the database is at this hanko's schema version."""
    have, want = applied(conn), latest()
    if have == want:
        return
    if have == 0:
        raise SchemaMismatch(f"{where} has no hanko schema: run `hanko store migrate`")
    if have < want:
        raise SchemaMismatch(
            f"{where} has schema version {have}, this hanko needs {want}: run `hanko store migrate`"
        )
    raise SchemaMismatch(f"{where} has schema version {have}, newer than this hanko's {want}")


def migrate(conn: psycopg.Connection[Any], *, runtime_role: str | None) -> list[int]:
    """Apply the migrations the database lacks, then grant `runtime_role` (when it is
    not the owner) its privileges. Returns the versions applied."""
    done: list[int] = []
    table = sql.Identifier(MIGRATIONS_TABLE)
    if applied(conn) == latest():
        return done  # nothing to do, and nothing asked of a role that may not own it
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATE_LOCK,))
        conn.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (version integer PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            ).format(table)
        )
    for version, name, text in migrations():
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATE_LOCK,))
            row = conn.execute(
                sql.SQL("SELECT 1 FROM {} WHERE version = %s").format(table), (version,)
            ).fetchone()
            if row is not None:
                continue
            conn.execute(text.encode())
            conn.execute(
                sql.SQL("INSERT INTO {} (version, name) VALUES (%s, %s)").format(table),
                (version, name),
            )
            done.append(version)
    with conn.transaction():
        grant(conn, runtime_role)
    return done


def grant(conn: psycopg.Connection[Any], runtime_role: str | None) -> None:
    """The runtime role's privileges: all it needs on the store's tables, only INSERT
    and SELECT on the append-only ones. Without a separate role, the owner's own
    UPDATE, DELETE and TRUNCATE on those are revoked (the triggers stay the guard)."""
    owner = conn.execute("SELECT current_user").fetchone()
    role = runtime_role or (str(owner[0]) if owner else "")
    who = sql.Identifier(role)
    for name in DB_NAMES:
        t = sql.Identifier(name.decode())
        if name in APPEND_ONLY:
            conn.execute(sql.SQL("GRANT SELECT, INSERT ON {} TO {}").format(t, who))
            conn.execute(sql.SQL("REVOKE UPDATE, DELETE, TRUNCATE ON {} FROM {}").format(t, who))
        else:
            conn.execute(sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON {} TO {}").format(t, who))
    conn.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(sql.Identifier(MIGRATIONS_TABLE), who))


def missing_tables(conn: psycopg.Connection[Any]) -> list[str]:
    """Store tables the database lacks (a migration that forgot one)."""
    rows = conn.execute(
        "SELECT name FROM unnest(%s::text[]) AS name WHERE to_regclass(name) IS NULL",
        ([n.decode() for n in DB_NAMES],),
    ).fetchall()
    return [str(r[0]) for r in rows]
