"""The PostgreSQL store's schema: versioned steps (core/store/migrations/NNNN_name.sql,
applied in order, each once) and the privileges of the role hanko runs as.

Steps are expand/contract, so hosts upgrade one at a time. Each says its kind on its
first line (`-- kind: ...`):
- expand: adds (columns, tables, indexes); the hanko of the schema before keeps
  running on it, and leaves the new columns to be filled;
- contract: removes or tightens what only the hanko before the previous one needed
  (a column becomes NOT NULL); it waits until no such hanko is connected;
- offline: a conversion no older hanko runs on; stop them first.
A hanko runs on a database whose schema is at least the last of its own steps that
is not a contract (so a pending contract step does not stop a rolling upgrade), and
whose latest step is one it can run beside (`oldest_code`, recorded per step).

A step's SQL runs in one transaction; a part after the line `-- outside a transaction`
runs statement by statement after it (CREATE INDEX CONCURRENTLY, VALIDATE CONSTRAINT),
after the step's data work (core/store/pg_steps.py), and the step is recorded last:
an interrupted step is taken up again by the next `hanko store migrate`.

Migrations run as the role that owns the tables (`[store] admin_dsn`, or `dsn` when
they are the same role). The role hanko serves with gets what it needs and no more:
on the audit log and the ledger, INSERT and SELECT only.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import Any, NamedTuple

import psycopg
from psycopg import sql

from core.base.errors import SchemaMismatch, StepWaits, StoreError

APPEND_ONLY = (b"audit", b"ledger")
MIGRATIONS_TABLE = "hanko_migrations"
# Two migrators at once take turns on this (pg_advisory_xact_lock).
MIGRATE_LOCK = 0x68616E6B6F_01  # "hanko" | 1
_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_KIND = re.compile(r"^-- kind: (expand|contract|offline)\s*$", re.MULTILINE)
OUTSIDE = "-- outside a transaction"
# Every hanko connection's application_name ends with its schema (connection_kwargs):
# what `migrate` reads to know which hanko versions are connected.
_SCHEMA_TAG = re.compile(r"\(schema (\d+)\)$")


class Step(NamedTuple):
    version: int
    name: str
    kind: str  # expand, contract, offline
    text: str  # the SQL of its transaction
    outside: list[str]  # statements run one by one after it
    summary: str  # its leading comment, for --plan

    @property
    def oldest_code(self) -> int:
        """The oldest hanko (by its schema) that runs on a database at this step."""
        return self.version if self.kind == "offline" else self.version - 1


def _step(version: int, name: str, text: str) -> Step:
    kind_line = _KIND.search(text)
    # The key-value steps (1 to 3) predate kinds: each needed the hanko of its own.
    kind = kind_line[1] if kind_line else "offline"
    inside, _, rest = text.partition(OUTSIDE)
    outside = [s.strip() for s in rest.split(";\n") if s.strip().rstrip(";")]
    summary_lines = []
    for line in text.splitlines():
        if not line.startswith("--"):
            break
        if not line.startswith("-- kind:"):
            summary_lines.append(line[2:].strip())
    return Step(
        version, name, kind, inside, [s.rstrip(";") for s in outside], " ".join(summary_lines)
    )


def steps() -> list[Step]:
    """Every step in the package, in order: versions run 1, 2, 3... without a gap (a
    gap is a packaging mistake, refused)."""
    found = []
    for entry in resources.files("core.store").joinpath("migrations").iterdir():
        match = _FILE.match(entry.name)
        if match:
            found.append(_step(int(match[1]), match[2], entry.read_text()))
    found.sort()
    if [s.version for s in found] != list(range(1, len(found) + 1)):
        raise SchemaMismatch("the packaged store migrations are not numbered 1, 2, 3...")
    return found


def latest() -> int:
    return len(steps())


def required() -> int:
    """The oldest schema this hanko runs on: its last step that is not a contract."""
    return max(s.version for s in steps() if s.kind != "contract")


def applied(conn: psycopg.Connection[Any]) -> int:
    """The schema version of the database (0: no hanko schema yet)."""
    return _state(conn)[0]


def _state(conn: psycopg.Connection[Any]) -> tuple[int, int]:
    """(version, the oldest hanko's schema that runs on it)."""
    row = conn.execute("SELECT to_regclass(%s)", (MIGRATIONS_TABLE,)).fetchone()
    if row is None or row[0] is None:
        return 0, 0
    table = sql.Identifier(MIGRATIONS_TABLE)
    has_oldest = conn.execute(
        "SELECT 1 FROM information_schema.columns WHERE table_name = %s"
        " AND column_name = 'oldest_code'",
        (MIGRATIONS_TABLE,),
    ).fetchone()
    oldest = sql.SQL("oldest_code" if has_oldest else "NULL::integer")
    row = conn.execute(
        sql.SQL("SELECT version, {} FROM {} ORDER BY version DESC LIMIT 1").format(oldest, table)
    ).fetchone()
    if row is None:
        return 0, 0
    version = int(row[0])
    return version, version if row[1] is None else int(row[1])


def check(conn: psycopg.Connection[Any], where: str) -> int:
    """The schema this hanko uses on the database (its own latest, or the database's
    when that is older but still new enough); SchemaMismatch when it cannot run."""
    have, oldest = _state(conn)
    mine, needs = latest(), required()
    if have == 0:
        raise SchemaMismatch(f"{where} has no hanko schema: run `hanko store migrate`")
    if have < needs:
        raise SchemaMismatch(
            f"{where} has schema version {have}, this hanko needs {needs}:"
            " run `hanko store migrate`"
        )
    if oldest > mine:
        raise SchemaMismatch(
            f"{where} has schema version {have}, which no hanko older than schema {oldest}"
            f" runs on; this one is of schema {mine}"
        )
    return min(have, mine)


def connected(conn: psycopg.Connection[Any]) -> dict[int, int]:
    """Other hanko connections to this database, counted by the schema of their hanko."""
    rows = conn.execute(
        "SELECT application_name FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
    ).fetchall()
    out: dict[int, int] = {}
    for (name,) in rows:
        match = _SCHEMA_TAG.search(name or "")
        if match:
            out[int(match[1])] = out.get(int(match[1]), 0) + 1
    return out


def blockers(conn: psycopg.Connection[Any], step: Step) -> str:
    """Why `step` cannot be applied now ("" when it can): connected hanko that would
    not run on it."""
    older = {s: n for s, n in connected(conn).items() if s < step.oldest_code}
    if not older:
        return ""
    who = ", ".join(f"{n} of schema {s}" for s, n in sorted(older.items()))
    return (
        f"step {step.version} ({step.kind}) needs every connected hanko to be of schema"
        f" {step.oldest_code} or later: connections {who} are open"
    )


def plan(conn: psycopg.Connection[Any], *, to: int | None = None) -> list[dict[str, Any]]:
    """What `migrate` would apply, step by step: kind, summary, SQL, rows it converts
    or fills, and what holds it back now."""
    from core.store import pg_steps

    have = applied(conn)
    out = []
    for step in steps():
        if step.version <= have or (to is not None and step.version > to):
            continue
        out.append(
            {
                "version": step.version,
                "name": step.name,
                "kind": step.kind,
                "summary": step.summary,
                "sql": [_code(s) for s in step.text.split(";\n") if _code(s)] + step.outside,
                "rows": pg_steps.rows_to_touch(conn, step.version, have),
                "waits_for": blockers(conn, step),
            }
        )
    return out


def _code(statement: str) -> str:
    """A statement without its comment lines ("" when it is all comments)."""
    lines = statement.splitlines()
    return "\n".join(line for line in lines if not line.strip().startswith("--")).strip()


def migrate(
    conn: psycopg.Connection[Any], *, runtime_role: str | None, to: int | None = None
) -> list[int]:
    """Apply the steps the database lacks (up to `to`), then grant `runtime_role` (when
    it is not the owner) its privileges. Returns the versions applied; a step that must
    wait for older hanko to go raises StepWaits naming them, after the ones before it."""
    from core.store import pg_steps

    done: list[int] = []
    table = sql.Identifier(MIGRATIONS_TABLE)
    target = latest() if to is None else to
    if target > latest():
        raise StoreError(f"this hanko knows schema steps up to {latest()}, not {target}")
    if applied(conn) >= target:
        return done  # nothing to do, and nothing asked of a role that may not own it
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATE_LOCK,))
        conn.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (version integer PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            ).format(table)
        )
        conn.execute(
            sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS oldest_code integer").format(table)
        )
    waits = ""
    for step in steps():
        if step.version > target:
            break
        if _recorded(conn, step.version):
            continue
        waits = blockers(conn, step)
        if waits:
            break
        have = applied(conn)
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATE_LOCK,))
            if _recorded(conn, step.version):
                continue
            conn.execute(step.text.encode())
            pg_steps.inside(conn, step.version, have)
        pg_steps.after(conn, step.version)
        for statement in step.outside:
            conn.execute(statement.encode())
        with conn.transaction():
            conn.execute(
                sql.SQL("INSERT INTO {} (version, name, oldest_code) VALUES (%s, %s, %s)").format(
                    table
                ),
                (step.version, step.name, step.oldest_code),
            )
        done.append(step.version)
    with conn.transaction():
        grant(conn, runtime_role)
    if waits:
        raise StepWaits(waits, done)
    return done


def _recorded(conn: psycopg.Connection[Any], version: int) -> bool:
    row = conn.execute(
        sql.SQL("SELECT 1 FROM {} WHERE version = %s").format(sql.Identifier(MIGRATIONS_TABLE)),
        (version,),
    ).fetchone()
    return row is not None


def store_tables(conn: psycopg.Connection[Any]) -> list[str]:
    """The SQL tables of the store at the database's schema."""
    from core.store.keys import DB_NAMES
    from core.store.pg_typed import sql_tables

    if applied(conn) < 4:
        return [n.decode() for n in DB_NAMES]
    return sql_tables()


def grant(conn: psycopg.Connection[Any], runtime_role: str | None) -> None:
    """The runtime role's privileges: all it needs on the store's tables, only INSERT
    and SELECT on the append-only ones. Without a separate role, the owner's own
    UPDATE, DELETE and TRUNCATE on those are revoked (the triggers stay the guard)."""
    from core.store.pg_typed import APPEND_ONLY_SQL

    owner = conn.execute("SELECT current_user").fetchone()
    role = runtime_role or (str(owner[0]) if owner else "")
    who = sql.Identifier(role)
    append_only = {*APPEND_ONLY_SQL, *(n.decode() for n in APPEND_ONLY)}
    for name in store_tables(conn):
        t = sql.Identifier(name)
        if name in append_only:
            conn.execute(sql.SQL("GRANT SELECT, INSERT ON {} TO {}").format(t, who))
            conn.execute(sql.SQL("REVOKE UPDATE, DELETE, TRUNCATE ON {} FROM {}").format(t, who))
        else:
            conn.execute(sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON {} TO {}").format(t, who))
    conn.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(sql.Identifier(MIGRATIONS_TABLE), who))


def missing_tables(conn: psycopg.Connection[Any]) -> list[str]:
    """Store tables the database lacks (a migration that forgot one)."""
    rows = conn.execute(
        "SELECT name FROM unnest(%s::text[]) AS name WHERE to_regclass(name) IS NULL",
        (store_tables(conn),),
    ).fetchall()
    return [str(r[0]) for r in rows]
