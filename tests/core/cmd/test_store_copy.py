"""`hanko store copy` and `hanko store migrate` as an operator runs them: an LMDB store that
served real issuance moved to PostgreSQL and back, checked by counts and the licence
books; an empty target only."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from core.store import CertStatus, LmdbStore, pg_schema, serial_bytes
from tests.conftest import DevCA, client, csr, hanko, paying_org, serving
from tests.stores import PgDatabase

pytestmark = pytest.mark.slow


def with_store(ca: DevCA, name: str, table: str) -> Path:
    """A copy of the CA's configuration with another [store] table."""
    text = re.sub(
        r"\[store\]\n(?:[^\[\n][^\n]*\n|\n)*", table + "\n", ca.config_path.read_text(), count=1
    )
    path = ca.directory / f"{name}.toml"
    path.write_text(text)
    return path


def pg_table(ca: DevCA, database: PgDatabase) -> str:
    secret = ca.directory / "secrets" / "store.password"
    secret.write_text(database.password)
    secret.chmod(0o600)
    return (f'[store]\nbackend = "postgresql"\ndsn = "{database.dsn}"\n'
            f'password = {{ file = "secrets/store.password" }}\n'
            f'admin_dsn = "{database.admin_dsn}"\n'
            f'admin_password = {{ file = "secrets/store.password" }}\n')  # fmt: skip


def test_lmdb_to_postgresql_and_back(fresh_ca: DevCA, postgres: object, tmp_path: Path) -> None:
    ca = fresh_ca
    with serving(ca) as (base, _, _):
        paying_org(client(base, ca, "admin"), "acme")
        with client(base, ca, "rpc", "acme") as rpc:
            serials = []
            for i in range(6):
                r = rpc.post("/v1/certificates", json={"csr": csr(f"c{i}.example.co.jp"),
                             "profile": "ov", "organization": "acme"})  # fmt: skip
                assert r.status_code == 201, r.text
                serials.append(r.json()["serial"])
            r = rpc.post(f"/v1/certificates/{serials[0]}/revoke", json={"reason": "superseded"})
            assert r.status_code == 200, r.text
    from tests.stores import new_database

    database = new_database(postgres, migrate=False)  # type: ignore[arg-type]
    to_pg = with_store(ca, "on-postgresql", pg_table(ca, database))
    # A database without the schema is refused with what to do about it.
    refused = hanko("store", "copy", "--from", str(ca.config_path), "--to", str(to_pg))
    assert refused.returncode != 0
    assert "run `hanko store migrate`" in refused.stderr
    assert "Traceback" not in refused.stderr
    migrated = hanko("store", "migrate", "-c", str(to_pg), "--json", check=True)
    latest = pg_schema.latest()
    assert json.loads(migrated.stdout) == {
        "applied": list(range(1, latest + 1)),
        "version": latest,
    }
    again = hanko("store", "migrate", "-c", str(to_pg), "--json", check=True)
    assert json.loads(again.stdout) == {"applied": [], "version": latest}

    done = hanko("store", "copy", "--from", str(ca.config_path), "--to", str(to_pg), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["licenses_check_ok"] is True
    with LmdbStore(ca.config.path(ca.config.store.path), readonly=True) as lmdb_store:
        source = lmdb_store.stat()
    assert report["tables"]["certs"] == source["certs"] >= 6
    assert all(report["tables"][t] == n for t, n in source.items() if t != "meta")
    assert hanko("licenses", "check", "-c", str(to_pg)).returncode == 0

    # LMDB's file backups say what to use instead; the CRL URL list reads the database.
    backup = hanko("backup", "-c", str(to_pg), "--out", str(tmp_path / "x.backup"))
    assert backup.returncode != 0
    assert "on PostgreSQL use pg_basebackup or pg_dump" in backup.stderr
    urls = hanko("crl", "urls", "-c", str(to_pg), "--json", check=True)
    assert len(json.loads(urls.stdout)["crl_urls"]) == ca.config.crl.partitions

    # The same certificates, the revocation with them, from the PostgreSQL store.
    with database.open() as pg, pg.read() as txn:
        first = txn.get_cert(serial_bytes(int(serials[0], 16)))
        last = txn.get_cert(serial_bytes(int(serials[-1], 16)))
        assert first is not None
        assert first.status is CertStatus.REVOKED
        assert last is not None
        assert last.status is CertStatus.GOOD

    # Copying into a store that holds something is refused and changes nothing.
    twice = hanko("store", "copy", "--from", str(ca.config_path), "--to", str(to_pg))
    assert twice.returncode != 0
    assert "not empty" in twice.stderr

    # And back to a new LMDB store.
    back = with_store(ca, "back-on-lmdb", f'[store]\npath = "{tmp_path / "back"}"\n')
    done = hanko("store", "copy", "--from", str(to_pg), "--to", str(back), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["tables"]["certs"] == source["certs"]
    with LmdbStore(tmp_path / "back", readonly=True) as copied:
        assert {t: n for t, n in copied.stat().items() if t != "meta"} == {
            t: n for t, n in source.items() if t != "meta"
        }
    assert hanko("licenses", "check", "-c", str(back)).returncode == 0
