"""A PostgreSQL primary with a synchronous standby, two clusters on loopback: the primary
is killed (-9) while `hanko serve` issues and revokes, the standby is promoted, and
everything hanko acknowledged is on it."""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.store import CertStatus, serial_bytes
from core.store.pg_store import PgStore
from tests.conftest import DevCA, client, csr, init_ca, paying_org, serving, tls
from tests.pg_server import RUNTIME_ROLE, PostgresServer
from tests.stores import new_database

pytestmark = pytest.mark.slow


@pytest.fixture
def pair() -> Iterator[tuple[PostgresServer, PostgresServer]]:
    primary = PostgresServer(name="primary")
    standby = None
    try:
        primary.create_roles()
        standby = PostgresServer(name="standby1", standby_of=primary)
        # Synchronous from now on: a commit returns once the standby has it on disk.
        primary.sql("ALTER SYSTEM SET synchronous_standby_names = 'standby1'")
        primary.sql("SELECT pg_reload_conf()")
        deadline = time.monotonic() + 30
        while ("standby1", "sync") not in (
            rows := primary.sql("SELECT application_name, sync_state FROM pg_stat_replication")
        ):
            assert time.monotonic() < deadline, rows
            time.sleep(0.2)
        yield primary, standby
    finally:
        if standby is not None:
            standby.close()
        primary.close()


def test_nothing_acknowledged_is_lost_when_the_primary_dies(
    pair: tuple[PostgresServer, PostgresServer], tmp_path: Path
) -> None:
    primary, standby = pair
    database = new_database(primary, migrate=False)
    ca: DevCA = init_ca(tmp_path / "ca", store=database)
    acked: list[str] = []
    revoked: list[str] = []
    killed = threading.Event()
    lock = threading.Lock()
    with serving(ca) as (base, _, _):
        paying_org(client(base, ca, "admin"), "acme")
        rpc = client(base, ca, "rpc", "acme")
        secret = rpc.headers["Authorization"]
        rpc.close()

        def work(i: int) -> None:
            with httpx.Client(base_url=base, verify=tls(ca), timeout=60,
                              headers={"Authorization": secret}) as c:  # fmt: skip
                for j in range(40):
                    if killed.is_set():
                        return
                    try:
                        r = c.post("/v1/certificates", json={
                            "csr": csr(f"w{i}-{j}.example.co.jp"), "profile": "ov",
                            "organization": "acme"})  # fmt: skip
                        if r.status_code != 201:
                            continue
                        serial = r.json()["serial"]
                        with lock:
                            acked.append(serial)
                        if j % 3 == 0:
                            v = c.post(f"/v1/certificates/{serial}/revoke",
                                       json={"reason": "superseded"})  # fmt: skip
                            if v.status_code == 200:
                                with lock:
                                    revoked.append(serial)
                    except httpx.TransportError:
                        continue
                    with lock:
                        if len(acked) >= 120 and not killed.is_set():
                            killed.set()
                            primary.kill()

        with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
            list(pool.map(work, range(16)))
        assert killed.is_set(), "the burst ended before the primary was killed"
        # The service notices at once and answers 503, never 500.
        with httpx.Client(base_url=base, verify=tls(ca), timeout=60,
                          headers={"Authorization": secret}) as c:  # fmt: skip
            body = {"csr": csr("after.example.co.jp"), "profile": "ov", "organization": "acme"}
            r = c.post("/v1/certificates", json=body)
            assert r.status_code == 503, r.text
    standby.promote()
    promoted = PgStore(standby.dsn(RUNTIME_ROLE, database.name), password=standby.password)
    try:
        with promoted.read() as txn:
            missing = [s for s in acked if txn.get_cert(serial_bytes(int(s, 16))) is None]
            records: list[Any] = [txn.get_cert(serial_bytes(int(s, 16))) for s in revoked]
    finally:
        promoted.close()
    assert len(acked) >= 120
    assert not missing, f"{len(missing)} acknowledged certificates are not on the standby"
    assert revoked
    assert all(r is not None and r.status is CertStatus.REVOKED for r in records)


def test_a_commit_the_standby_did_not_confirm_is_not_acknowledged(
    pair: tuple[PostgresServer, PostgresServer], tmp_path: Path
) -> None:
    primary, standby = pair
    database = new_database(primary, migrate=False)
    ca: DevCA = init_ca(tmp_path / "ca", store=database)
    text = ca.config_path.read_text()
    ca.config_path.write_text(
        text.replace(
            'synchronous_commit = "on"', 'synchronous_commit = "on"\nstatement_timeout = "3s"'
        )
    )
    with serving(ca) as (base, _, _):
        paying_org(client(base, ca, "admin"), "acme")
        with client(base, ca, "rpc", "acme") as rpc:
            body = {"csr": csr("www.example.co.jp"), "profile": "ov", "organization": "acme"}
            assert rpc.post("/v1/certificates", json=body).status_code == 201
            standby.kill()
            started = time.monotonic()
            r = rpc.post("/v1/certificates", json=body)
            assert r.status_code == 503, r.text
            assert "not confirmed by the synchronous standby" in r.text
            assert time.monotonic() - started < 30
