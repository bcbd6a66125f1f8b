"""`hanko certs search` on PostgreSQL: one query over the typed certificates table
(core/store/pg_typed.py) with the semantics of the LMDB walk (core/store/search.py),
in the same order (hanko's serial key), so a page cursor means the same on both.

Rows a hanko of the schema before key facts wrote during a rolling upgrade have no key
type yet: a key-type search reads those rows' DER and decides here."""

from __future__ import annotations

from typing import Any

from psycopg import sql

from core.store.key_facts import key_facts
from core.store.pg_typed import KEY_FACTS_VERSION
from core.store.search import (
    CertHit,
    CertPage,
    CertQuery,
    Matcher,
    after_key,
    like_pattern,
    status_of,
)

_COLUMNS = (
    "k, serial, issuer, CASE status WHEN 'revoked' THEN 1 ELSE 0 END,"
    " hanko_epoch(not_before), hanko_epoch(not_after), names, organization, account,"
    " profile, hanko_epoch(revoked_at), reason, precertificate_only"
)

# Filters that are one comparison with the query's value.
_SIMPLE = (
    ("organization", "organization = %s"),
    # An account's certificates: a precertificate alone is nobody's yet.
    ("account", "account = %s AND NOT precertificate_only"),
    ("profile", "profile = %s"),
    ("issuer", "issuer = %s"),
    ("issued_after", "not_before >= to_timestamp(%s)"),
    ("issued_before", "not_before < to_timestamp(%s)"),
)
_STATUS = {
    "revoked": "status = 'revoked'",
    "good": "status = 'good' AND not_after > to_timestamp(%s)",
    "expired": "status = 'good' AND not_after <= to_timestamp(%s)",
}


def conditions(q: CertQuery, now: int, *, schema: int) -> tuple[sql.Composed, list[Any]]:
    """The WHERE clause of a checked query, and its parameters."""
    where: list[sql.Composable] = []
    params: list[Any] = []

    def add(clause: str, *values: Any) -> None:
        where.append(sql.SQL(clause))
        params.extend(values)

    if q.name is not None:
        if "*" in q.name:
            add(
                "EXISTS (SELECT 1 FROM unnest(names) AS n WHERE n LIKE %s)",
                like_pattern(q.name),
            )
        else:
            add("names @> ARRAY[%s]::text[]", q.name)
    for field, clause in _SIMPLE:
        value = getattr(q, field)
        if value is not None:
            add(clause, value)
    if q.status is not None:
        clause = _STATUS[q.status]
        add(clause, *((now,) if "%s" in clause else ()))
    if q.key_type is not None and schema >= KEY_FACTS_VERSION:
        add("(key_type = %s OR key_type IS NULL)", q.key_type)
    if q.after is not None:
        add("k > %s", after_key(q.after))
    if not where:
        where.append(sql.SQL("true"))
    return sql.SQL(" AND ").join(where), params


def search(conn: Any, query: CertQuery, now: int, *, schema: int) -> CertPage:
    """Run a search on a connection to the store's database (a read transaction's)."""
    q = query.checked()
    where, params = conditions(q, now, schema=schema)
    facts = (
        "key_type, CASE WHEN key_type IS NULL THEN der END"
        if schema >= KEY_FACTS_VERSION
        else "NULL::text, der"
    )
    statement = sql.SQL("SELECT {}, {} FROM certificates WHERE {} ORDER BY k LIMIT %s").format(
        sql.SQL(_COLUMNS),
        sql.SQL(facts),
        where,
    )
    rows = conn.execute(statement, (*params, q.limit), binary=True).fetchall()
    match = Matcher(q, now)
    found = []
    for row in rows:
        (_, serial, issuer, status, nb, na, names, org, account, profile) = row[:10]
        revoked_at, reason, precert, key_type, der = row[10:]
        if key_type is None:
            key_type = key_facts(bytes(der))[0]
            if q.key_type is not None and key_type != q.key_type:
                continue
        if not match.names_match(names):
            continue  # LIKE and the pattern agree; kept as the one definition
        found.append(
            CertHit(
                serial=bytes(serial).hex(),
                status=status_of(status, na, now),
                issuer=bytes(issuer).hex(),
                organization=org,
                account=account,
                profile=profile,
                names=list(names),
                key_type=key_type,
                not_before=nb,
                not_after=na,
                revoked_at=revoked_at,
                reason=reason,
                precertificate_only=precert,
            )
        )
    more = len(rows) >= q.limit
    return CertPage(found, bytes(rows[-1][1]).hex() if more else None)
