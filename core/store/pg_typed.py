"""Typed PostgreSQL tables behind the store's key-value interface (core/store/kv.py).

What operators and auditors query (certificates, organizations, domain validations,
the audit log, the ledger, ACME orders) is kept in tables with a column per record
field, typed (timestamptz, text[], jsonb, booleans), so plain SQL answers "every
certificate of this organization issued from the EV profile last week". The domain
modules still read and write records by key: a typed table selects its columns in
the record's field order and the row *is* the record (records are array-like msgpack,
so encoding the row gives the record's exact bytes); a write decodes the record and
sends one array per column.

The hand-kept index tables whose entries are a function of one typed row (the expiry
index, an account's certificates, which organizations validated a domain, an ACME
account's orders, the ledger's index) are derived: their rows are selected from the
typed table through an expression index PostgreSQL maintains, and what the domain
modules write to them stays in the transaction's overlay (core/store/pg_kv.py).
Conversions between epoch integers and timestamptz happen in SQL, so Python sees the
record's own integers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import msgspec
from psycopg import sql

from core.store.key_facts import key_facts
from core.store.keys import DB_NAMES
from core.store.pg_kv import Table
from core.store.records import (
    AcmeOrderRecord,
    AuditEntry,
    CertRecord,
    DomainRecord,
    LedgerEntry,
    OrgRecord,
)

# The schema version from which certificates carry their key's type and SPKI hash.
KEY_FACTS_VERSION = 5


class Kind(NamedTuple):
    """How one record field is a column: the array type its values are sent as, SQL
    making the column from the sent value `{}`, and SQL making the field from the
    column `{}`."""

    param: str
    load: str
    dump: str
    to_param: Callable[[Any], Any] | None = None


def _json_list(value: list[str]) -> str:
    return msgspec.json.encode(value).decode()


def _json_map(value: dict[str, str]) -> str:
    return msgspec.json.encode(value).decode()


PLAIN = {
    "bytea": Kind("bytea[]", "{}", "{}"),
    "text": Kind("text[]", "{}", "{}"),
    "bigint": Kind("bigint[]", "{}", "{}"),
    "integer": Kind("bigint[]", "{}::integer", "{}"),
    "smallint": Kind("smallint[]", "{}", "{}"),
    "boolean": Kind("boolean[]", "{}", "{}"),
}
# Epoch seconds; epoch seconds with 0 for none; epoch microseconds.
EPOCH = Kind("bigint[]", "to_timestamp({})", "hanko_epoch({})")
EPOCH_OR_ZERO = Kind(
    "bigint[]",
    "CASE WHEN {0} = 0 THEN NULL ELSE to_timestamp({0}) END",
    "coalesce(hanko_epoch({}), 0)",
)
EPOCH_US = Kind("bigint[]", "hanko_from_us({})", "hanko_epoch_us({})")
TEXT_ARRAY = Kind("text[]", "ARRAY(SELECT jsonb_array_elements_text({}::jsonb))", "{}", _json_list)
JSON_MAP = Kind("text[]", "{}::jsonb", "{}", _json_map)
# A certificate's status: 'good' or 'revoked' for people, CertStatus for the record.
STATUS = Kind(
    "smallint[]",
    "CASE {} WHEN 1 THEN 'revoked' ELSE 'good' END",
    "CASE {} WHEN 'revoked' THEN 1 ELSE 0 END",
    int,
)


class Column(NamedTuple):
    name: str
    kind: Kind


def _columns(
    record: type[msgspec.Struct], spec: dict[str, Kind | str], rename: dict[str, str]
) -> list[Column]:
    """The record's fields in order, each a column: `spec` names every field's kind
    (a PLAIN type name or a Kind), `rename` the columns not named as their field."""
    fields = [f.name for f in msgspec.structs.fields(record)]
    if sorted(fields) != sorted(spec):
        raise TypeError(f"{record.__name__}: the column spec does not name every field")
    out = []
    for field in fields:
        kind = spec[field]
        out.append(Column(rename.get(field, field), PLAIN[kind] if isinstance(kind, str) else kind))
    return out


class Extras(NamedTuple):
    """Columns that are not record fields: computed together from the record when it
    is written, never read back (a certificate's key type and SPKI hash)."""

    names: tuple[str, ...]
    params: tuple[str, ...]
    compute: Callable[[Any], tuple[Any, ...]]


class TypedTable(Table):
    """A store table kept as a typed SQL table (`sql_name`), keyed by `k` (the store's
    key, so cursors walk it in the same order as LMDB)."""

    __slots__ = ("_decode", "_encode", "_extras", "_kinds", "sql_name")

    def __init__(
        self,
        name: str,
        sql_name: str,
        record: type[msgspec.Struct],
        columns: list[Column],
        *,
        extras: Extras | None = None,
        append_only: bool = False,
    ) -> None:
        super().__init__(sql_name, append_only=append_only)
        self.name = name
        self.sql_name = sql_name
        self._decode = msgspec.msgpack.Decoder(record).decode
        self._encode = msgspec.msgpack.Encoder().encode
        self._kinds = [c.kind.to_param for c in columns]
        self._extras = None if extras is None else extras.compute
        extra_names = () if extras is None else extras.names
        extra_params = () if extras is None else extras.params
        t = sql.Identifier(sql_name)
        dumped = sql.SQL(", ").join(
            sql.SQL(c.kind.dump).format(sql.Identifier(c.name)) for c in columns
        )
        self.get = sql.SQL("SELECT {} FROM {} WHERE k = %s").format(dumped, t)
        self.get_many = sql.SQL("SELECT k, {} FROM {} WHERE k = ANY(%s)").format(dumped, t)
        self.page_from = sql.SQL("SELECT k, {} FROM {} WHERE k >= %s ORDER BY k LIMIT %s").format(
            dumped, t
        )
        self.page_after = sql.SQL("SELECT k, {} FROM {} WHERE k > %s ORDER BY k LIMIT %s").format(
            dumped, t
        )
        names = ["k", *(c.name for c in columns), *extra_names]
        params = ["bytea[]", *(c.kind.param for c in columns), *extra_params]
        loads = [
            sql.SQL("u.k"),
            *(
                sql.SQL(c.kind.load.replace("{}", "{0}")).format(sql.SQL("u.c" + str(i)))
                for i, c in enumerate(columns)
            ),
            *(sql.SQL("u.e" + str(i)) for i in range(len(extra_names))),
        ]
        aliases = [
            "k",
            *(f"c{i}" for i in range(len(columns))),
            *(f"e{i}" for i in range(len(extra_names))),
        ]
        insert = sql.SQL("INSERT INTO {} ({}) SELECT {} FROM unnest({}) AS u({})").format(
            t,
            sql.SQL(", ").join(map(sql.Identifier, names)),
            sql.SQL(", ").join(loads),
            sql.SQL(", ").join(sql.SQL("%s::" + p) for p in params),
            sql.SQL(", ").join(map(sql.Identifier, aliases)),
        )
        if not append_only:
            insert += sql.SQL(" ON CONFLICT (k) DO UPDATE SET ") + sql.SQL(", ").join(
                sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(n)) for n in names[1:]
            )
        self.insert = insert

    def value(self, row: tuple[Any, ...]) -> bytes:
        return self._encode(row)

    def pairs(self, rows: list[tuple[Any, ...]]) -> list[tuple[bytes, bytes]]:
        encode = self._encode
        return [(row[0], encode(row[1:])) for row in rows]

    def params(self, keys: list[bytes], values: list[bytes]) -> tuple[Any, ...]:
        records = [self._decode(v) for v in values]
        rows = [msgspec.structs.astuple(r) for r in records]
        columns: list[list[Any]] = [list(col) for col in zip(*rows, strict=True)]
        for i, convert in enumerate(self._kinds):
            if convert is not None:
                columns[i] = [None if v is None else convert(v) for v in columns[i]]
        if self._extras is None:
            return (keys, *columns)
        extras = [list(col) for col in zip(*map(self._extras, records), strict=True)]
        return (keys, *columns, *extras)


class Branch(NamedTuple):
    """One way a derived table's rows come from a typed table: their key and value
    as SQL over its columns, for the rows `where` admits."""

    table: str
    key: str
    value: str
    where: str = "true"


class DerivedTable(Table):
    """A store index table PostgreSQL keeps: its rows are selected from typed tables
    through expression indexes (the migration creates one per branch, on `key`, with
    the branch's `where`)."""

    derived = True

    def __init__(self, name: str, branches: Sequence[Branch]) -> None:
        super().__init__(name)
        rows = sql.SQL(" UNION ALL ").join(
            sql.SQL("(SELECT {} AS k, {} AS v FROM {} WHERE {})").format(
                sql.SQL(b.key), sql.SQL(b.value), sql.Identifier(b.table), sql.SQL(b.where)
            )
            for b in branches
        )
        source = sql.SQL("({}) AS derived").format(rows)
        self.get = sql.SQL("SELECT v FROM {} WHERE k = %s").format(source)
        self.get_many = sql.SQL("SELECT k, v FROM {} WHERE k = ANY(%s)").format(source)
        self.page_from = sql.SQL("SELECT k, v FROM {} WHERE k >= %s ORDER BY k LIMIT %s").format(
            source
        )
        self.page_after = sql.SQL("SELECT k, v FROM {} WHERE k > %s ORDER BY k LIMIT %s").format(
            source
        )
        self.count = sql.SQL("SELECT count(*) FROM {}").format(source)


CERT_COLUMNS = _columns(
    CertRecord,
    {
        "serial": "bytea",
        "issuer": "bytea",
        "status": STATUS,
        "not_before": EPOCH,
        "not_after": EPOCH,
        "names": TEXT_ARRAY,
        "organization": "text",
        "profile": "text",
        "partition": "integer",
        "der": "bytea",
        "revoked_at": EPOCH,
        "reason": "smallint",
        "first_issued": EPOCH,
        "account_id": "text",
        "license": "text",
        "charged": "bigint",
        "lot": "bigint",
        "released": "boolean",
        "reissues": "integer",
        "precertificate_only": "boolean",
        "precertificate": "bytea",
        "coupon": "bytea",
        "superseded_by": "bytea",
        "names_charged": "integer",
    },
    {"account_id": "account"},
)
KEY_FACTS = Extras(
    ("key_type", "spki_sha256"), ("text[]", "bytea[]"), lambda rec: key_facts(rec.der)
)
ORG_COLUMNS = _columns(
    OrgRecord,
    {
        "id": "text",
        "level": "text",
        "organization": "text",
        "country": "text",
        "state": "text",
        "locality": "text",
        "validated_at": EPOCH,
        "jurisdiction_country": "text",
        "business_category": "text",
        "registration_number": "text",
        "account": "text",
        "parent": "text",
    },
    {"organization": "name"},
)
DOMAIN_COLUMNS = _columns(
    DomainRecord,
    {
        "org_id": "text",
        "domain": "text",
        "validated_at": EPOCH,
        "method": "text",
        "attested_by": "text",
        "evidence": "text",
        "challenge": "text",
    },
    {"org_id": "organization"},
)
AUDIT_COLUMNS = _columns(
    AuditEntry,
    {
        "seq": "bigint",
        "at": EPOCH_US,
        "actor": "text",
        "action": "text",
        "subject": "text",
        "detail": JSON_MAP,
    },
    {},
)
LEDGER_COLUMNS = _columns(
    LedgerEntry,
    {
        "seq": "bigint",
        "at": EPOCH,
        "account": "text",
        "license": "text",
        "movement": "text",
        "amount": "bigint",
        "actor": "text",
        "lot": "bigint",
        "serial": "text",
        "item": "text",
        "term_end": EPOCH_OR_ZERO,
        "quantity": "bigint",
        "note": "text",
    },
    {},
)
ORDER_COLUMNS = _columns(
    AcmeOrderRecord,
    {
        "id": "text",
        "acme_account": "text",
        "names": TEXT_ARRAY,
        "authz": TEXT_ARRAY,
        "status": "text",
        "expires": EPOCH,
        "created_at": EPOCH,
        "serial": "bytea",
        "replaces": "text",
        "error": "text",
        "profile": "text",
    },
    {},
)

# The store's typed tables: store name -> SQL table.
TYPED = {
    b"certs": "certificates",
    b"orgs": "organizations",
    b"domains": "domain_validations",
    b"audit": "audit_log",
    b"ledger": "ledger",
    b"acme_orders": "orders",
}
APPEND_ONLY_SQL = ("audit_log", "ledger")

# The index tables PostgreSQL keeps, as the SQL of their keys (bytes sorting as the
# store's keys do: big-endian numbers, UTF-8 text, \0 separators).
_EXPIRY_KEY = "int8send(hanko_epoch(not_after)) || k"
_ACCOUNT_CERTS_KEY = (
    "hanko_utf8(account) || '\\x00'::bytea || int8send(hanko_epoch(not_after)) || k"
)
_ACCOUNT_CERTS_WHERE = "account <> '' AND NOT precertificate_only"
_DOMAIN_ORGS_KEY = "hanko_utf8(domain) || '\\x00'::bytea || hanko_utf8(organization)"
_ACCOUNT_ORDERS_KEY = (
    "hanko_utf8(acme_account) || '\\x00'::bytea || int8send(hanko_epoch(created_at))"
    " || hanko_utf8(id)"
)
_LEDGER_BY_LICENSE = "'\\x4c'::bytea || hanko_utf8(license) || '\\x00'::bytea || k"
_LEDGER_BY_ACCOUNT = "'\\x41'::bytea || hanko_utf8(account) || '\\x00'::bytea || k"
DERIVED: dict[bytes, tuple[Branch, ...]] = {
    b"expiry": (Branch("certificates", _EXPIRY_KEY, "issuer"),),
    b"account_certs": (
        Branch("certificates", _ACCOUNT_CERTS_KEY, "''::bytea", _ACCOUNT_CERTS_WHERE),
    ),
    b"domain_orgs": (Branch("domain_validations", _DOMAIN_ORGS_KEY, "''::bytea"),),
    b"acme_account_orders": (Branch("orders", _ACCOUNT_ORDERS_KEY, "''::bytea"),),
    b"ledger_index": (
        Branch("ledger", _LEDGER_BY_LICENSE, "''::bytea"),
        Branch("ledger", _LEDGER_BY_ACCOUNT, "''::bytea"),
    ),
}


def tables(version: int) -> dict[bytes, Table]:
    """The store's table handles on a database at schema `version` (at least the
    first typed one), as this hanko uses them."""
    facts = KEY_FACTS if version >= KEY_FACTS_VERSION else None
    out: dict[bytes, Table] = {}
    for name in DB_NAMES:
        if name == b"certs":
            out[name] = TypedTable("certs", "certificates", CertRecord, CERT_COLUMNS, extras=facts)
        elif name == b"orgs":
            out[name] = TypedTable("orgs", "organizations", OrgRecord, ORG_COLUMNS)
        elif name == b"domains":
            out[name] = TypedTable("domains", "domain_validations", DomainRecord, DOMAIN_COLUMNS)
        elif name == b"audit":
            out[name] = TypedTable(
                "audit", "audit_log", AuditEntry, AUDIT_COLUMNS, append_only=True
            )
        elif name == b"ledger":
            out[name] = TypedTable(
                "ledger", "ledger", LedgerEntry, LEDGER_COLUMNS, append_only=True
            )
        elif name == b"acme_orders":
            out[name] = TypedTable("acme_orders", "orders", AcmeOrderRecord, ORDER_COLUMNS)
        elif name in DERIVED:
            out[name] = DerivedTable(name.decode(), DERIVED[name])
        else:
            out[name] = Table(name.decode())
    return out


def sql_tables() -> list[str]:
    """Every SQL table the store writes (the derived ones have none of their own)."""
    return [TYPED.get(n, n.decode()) for n in DB_NAMES if n not in DERIVED]
