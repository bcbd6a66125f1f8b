"""The data work of schema steps (core/store/pg_schema.py) that SQL alone cannot do,
because it reads hanko's records: converting the key-value tables to typed ones, and
filling the key facts of certificates.

`inside` runs in the step's transaction (a conversion is all or nothing); `after`
runs once that committed, in short transactions of its own that take the store's
write lock, so serving hanko keep writing between them.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from core.store.key_facts import key_facts
from core.store.pg_kv import WRITE_LOCK
from core.store.pg_typed import KEY_FACTS_VERSION, TYPED, TypedTable, tables

TYPED_VERSION = 4
BATCH = 2000
# What step 4 converts, from the old table to the store table, and what it drops.
_CONVERTED = {
    "certs": b"certs",
    "orgs": b"orgs",
    "domains": b"domains",
    "audit": b"audit",
    "ledger_kv": b"ledger",
    "acme_orders": b"acme_orders",
}
_DROPPED = (
    *_CONVERTED,
    "expiry",
    "account_certs",
    "domain_orgs",
    "acme_account_orders",
    "ledger_index",
)


def inside(conn: psycopg.Connection[Any], version: int, have: int) -> None:
    if version == TYPED_VERSION:
        _convert(conn)


def after(conn: psycopg.Connection[Any], version: int) -> None:
    if version >= KEY_FACTS_VERSION:
        fill_key_facts(conn)


def rows_to_touch(conn: psycopg.Connection[Any], version: int, have: int) -> int:
    """Rows a step converts or fills, for `hanko store migrate --plan`."""
    if version == TYPED_VERSION:
        # Before the step, the key-value ledger still has its own name.
        old_names = [n.decode() for n in _CONVERTED.values()]
        return sum(_count(conn, old) for old in old_names if _exists(conn, old))
    if version >= KEY_FACTS_VERSION:
        if have < TYPED_VERSION:
            return _count(conn, "certs") if _exists(conn, "certs") else 0
        if have < KEY_FACTS_VERSION:
            return _count(conn, "certificates")
        row = conn.execute("SELECT count(*) FROM certificates WHERE key_type IS NULL").fetchone()
        return int(row[0]) if row else 0
    return 0


def _exists(conn: psycopg.Connection[Any], table: str) -> bool:
    row = conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()
    return row is not None and row[0] is not None


def _count(conn: psycopg.Connection[Any], table: str) -> int:
    row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()
    return int(row[0]) if row else 0


def _convert(conn: psycopg.Connection[Any]) -> None:
    """Every record of the key-value tables into its typed table, in key order, then
    the old tables (and the index tables PostgreSQL now keeps) dropped."""
    typed = tables(TYPED_VERSION)
    for old, name in _CONVERTED.items():
        table = typed[name]
        if not isinstance(table, TypedTable) or TYPED[name] != table.sql_name:
            raise TypeError(f"{old} converts to a typed table")
        page = sql.SQL("SELECT k, v FROM {} WHERE k > %s ORDER BY k LIMIT %s").format(
            sql.Identifier(old)
        )
        last = b""
        while True:
            rows = conn.execute(page, (last, BATCH), binary=True).fetchall()
            if not rows:
                break
            keys = [bytes(k) for k, _ in rows]
            conn.execute(table.insert, table.params(keys, [bytes(v) for _, v in rows]))
            last = keys[-1]
    for old in _DROPPED:
        conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(old)))


def fill_key_facts(conn: psycopg.Connection[Any]) -> int:
    """Key type and SPKI hash of every certificate that has none, a batch per
    transaction under the store's write lock. Returns how many were filled."""
    filled = 0
    last = b""
    while True:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
            rows = conn.execute(
                "SELECT k, der FROM certificates WHERE key_type IS NULL AND k > %s"
                " ORDER BY k LIMIT %s",
                (last, BATCH),
                binary=True,
            ).fetchall()
            if not rows:
                return filled
            facts = [key_facts(bytes(der)) for _, der in rows]
            conn.execute(
                "UPDATE certificates AS c SET key_type = u.t, spki_sha256 = u.h FROM"
                " unnest(%s::bytea[], %s::text[], %s::bytea[]) AS u(k, t, h) WHERE c.k = u.k",
                ([bytes(k) for k, _ in rows], [f[0] for f in facts], [f[1] for f in facts]),
            )
        filled += len(rows)
        last = bytes(rows[-1][0])
