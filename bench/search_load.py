"""`hanko bench search`: how long incident searches take at N certificates, on LMDB
(a walk of the certificates, an account's through its index) and on PostgreSQL (one
query over the typed table), with the same certificates in both, in one run.

Each query runs through `Store.search_certs`, as `hanko certs search` and the admin
API run it; every query must find the same serials on both back ends (checked), and
its time is the median of three. PostgreSQL is a throwaway cluster of the benchmark's
own on loopback (bench/pg_cluster.py), analyzed after the load as autovacuum would.

The certificates: a year of issuance, 5,000 organizations, 1,000 accounts, two issuers,
one in five EV, one in twenty revoked, three key types, and 200,000 domains (each with
its www name) shared by N / 200,000 certificates.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from bench.pg_cluster import ADMIN_ROLE, RUNTIME_ROLE, PostgresServer
from bench.progress import Progress
from bench.report import maybe_write
from core.base.reasons import RevocationReason
from core.store import CertRecord, CertStatus, LmdbStore, Store, WriteTxn, pg_schema
from core.store.pg_store import PgStore
from core.store.search import CertQuery
from crl.encoder import revoked_entry

START = int(dt.datetime(2026, 1, 1, tzinfo=dt.UTC).timestamp())
YEAR = 365 * 86400
DOMAINS = 200_000
CHUNK = 5_000
KEY_TYPES = ("ecdsa-p256", "ecdsa-p384", "rsa-2048")
ISSUERS = (bytes.fromhex("a1" * 20), bytes.fromhex("b2" * 20))
ENTRY = revoked_entry(1, dt.datetime(2026, 1, 1, tzinfo=dt.UTC), RevocationReason.SUPERSEDED)


def new_key(key_type: str) -> Any:
    """A private key of one of KEY_TYPES."""
    if key_type == "rsa-2048":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1() if key_type == "ecdsa-p256" else ec.SECP384R1())


def self_signed(key: Any) -> bytes:
    """A certificate of `key` (DER): what a record's DER is read for is its key."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench")])
    when = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(when)
        .not_valid_after(when + dt.timedelta(days=90))
        .sign(key, None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.DER)


def record(i: int, certs: int, ders: dict[str, bytes]) -> CertRecord:
    nb = START + i * YEAR // certs
    domain = f"d{i % DOMAINS}.example.jp"
    return CertRecord(
        # A bijection on 56 bits: serials unique, spread as random ones are.
        serial=((0x40 << 56) | (i * 2654435761 % (1 << 56))).to_bytes(8, "big"),
        issuer=ISSUERS[i % 2],
        status=CertStatus.GOOD,
        not_before=nb,
        not_after=nb + 90 * 86400,
        names=[domain, f"www.{domain}"],
        organization=f"org{i % 5000}",
        profile="ev" if i % 5 == 0 else "ov",
        partition=i % 64,
        der=ders[KEY_TYPES[i % 3]],
        account_id=f"acct{i % 1000}",
    )


def fill(store: Store, certs: int, ders: dict[str, bytes], progress: Progress) -> float:
    """The certificates through the store's write path, a chunk a commit; seconds."""
    t0 = time.perf_counter()
    for first in range(0, certs, CHUNK):

        def op(txn: WriteTxn, first: int = first) -> None:
            recs = [record(i, certs, ders) for i in range(first, min(first + CHUNK, certs))]
            # One round trip for the chunk's serials on PostgreSQL, not one each.
            txn.prefetch_issuance([r.serial for r in recs])
            for i, rec in enumerate(recs, start=first):
                txn.insert_cert(rec, at_us=rec.not_before * 1_000_000, actor="bench")
                if i % 20 == 0:
                    txn.revoke(
                        rec.serial,
                        at=rec.not_before + 3600,
                        reason=RevocationReason.SUPERSEDED,
                        actor="bench",
                        entry_der=ENTRY,
                    )

        store.write(op)
        if first % (CHUNK * 40) == 0:
            progress.say(f"{store.backend}: {first + CHUNK:,} of {certs:,} certificates")
    return time.perf_counter() - t0


def queries(certs: int) -> dict[str, CertQuery]:
    """The incident questions, each as `hanko certs search` asks it."""
    day = 86400
    window = (START + 120 * day, START + 150 * day)
    return {
        "a host name": CertQuery(name="www.d12345.example.jp"),
        "names under a domain (*.d12345.example.jp)": CertQuery(name="*.d12345.example.jp"),
        "an organization, 30 days": CertQuery(
            organization="org42", issued_after=window[0], issued_before=window[1]
        ),
        "an account": CertQuery(account="acct7"),
        "an issuer, one day": CertQuery(
            issuer=ISSUERS[1], issued_after=window[0], issued_before=window[0] + day
        ),
        "EV, revoked, RSA-2048": CertQuery(profile="ev", status="revoked", key_type="rsa-2048"),
    }


def timed(store: Store, query: CertQuery, now: int) -> tuple[float, list[str]]:
    """(median seconds of three, the serials found) of one search, every page."""
    times = []
    found: list[str] = []
    for _ in range(3):
        t0 = time.perf_counter()
        found = []
        after = None
        while True:
            page = store.search_certs(
                CertQuery(**{**_fields(query), "limit": 100_000, "after": after}), now
            )
            found += [c.serial for c in page.certificates]
            if page.next is None:
                break
            after = page.next
        times.append(time.perf_counter() - t0)
    return statistics.median(times), found


def _fields(query: CertQuery) -> dict[str, Any]:
    return {f: getattr(query, f) for f in query.__struct_fields__}


def run(certs: int, workdir: Path, progress: Progress) -> dict[str, Any]:
    ders = {k: self_signed(new_key(k)) for k in KEY_TYPES}
    now = START + YEAR
    pg = PostgresServer()
    try:
        pg.create_database("bench_search")
        with psycopg.connect(
            pg.dsn(ADMIN_ROLE, "bench_search"), password=pg.password, autocommit=True
        ) as conn:
            pg_schema.migrate(conn, runtime_role=RUNTIME_ROLE)
        lmdb = LmdbStore(workdir / "lmdb", create=True, map_size=64 << 30)
        postgres = PgStore(pg.dsn(RUNTIME_ROLE, "bench_search"), password=pg.password)
        stores: dict[str, Store] = {"lmdb": lmdb, "postgresql": postgres}
        load = {}
        for name, store in stores.items():
            with progress.phase(f"{name}: {certs:,} certificates"):
                load[name] = round(fill(store, certs, ders, progress), 1)
        with psycopg.connect(
            pg.dsn(ADMIN_ROLE, "bench_search"), password=pg.password, autocommit=True
        ) as conn:
            conn.execute("VACUUM ANALYZE")
        rows = []
        for label, query in queries(certs).items():
            results = {name: timed(store, query, now) for name, store in stores.items()}
            (lmdb_s, lmdb_found), (pg_s, pg_found) = results["lmdb"], results["postgresql"]
            if lmdb_found != pg_found:
                raise AssertionError(f"{label}: the back ends found different certificates")
            progress.say(f"{label}: {len(pg_found)} found, LMDB {lmdb_s:.3f} s, PG {pg_s:.3f} s")
            rows.append(
                {
                    "query": label,
                    "found": len(pg_found),
                    "lmdb_seconds": round(lmdb_s, 6),
                    "postgresql_seconds": round(pg_s, 6),
                    "lmdb_over_postgresql": round(lmdb_s / pg_s, 1) if pg_s else None,
                }
            )
        for store in stores.values():
            store.close()
        return {"certificates": certs, "load_seconds": load, "queries": rows}
    finally:
        pg.close()


def _print_text(report: dict[str, Any], write: Callable[[str], Any] = sys.stdout.write) -> None:
    write(f"certificate search at {report['certificates']:,} certificates (median of 3):\n")
    for r in report["queries"]:
        write(
            f"  {r['query']:<44} {r['found']:>6} found  LMDB {r['lmdb_seconds']:>8.3f} s"
            f"  PostgreSQL {r['postgresql_seconds']:>7.3f} s  ({r['lmdb_over_postgresql']}x)\n"
        )
    load = report["load_seconds"]
    write(f"  loaded in: LMDB {load['lmdb']} s, PostgreSQL {load['postgresql']} s\n")


def run_from_cli(args: argparse.Namespace) -> int:
    progress = Progress("search")
    with tempfile.TemporaryDirectory(prefix="hanko-bench-search-") as tmp:
        report = run(args.certs, Path(tmp), progress)
    maybe_write(args, "search", report)
    if args.json:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    else:
        _print_text(report)
    return 0
