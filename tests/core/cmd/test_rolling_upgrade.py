"""A rolling upgrade on one PostgreSQL database: two `hanko serve` of the previous
schema keep issuing and revoking while the schema moves one step (an expand step) under
them, each is restarted on the new code in turn, and the contract step that follows
waits until the last old one is gone. Nothing acknowledged is lost and the licence books
balance.

"The previous hanko" is this tree without its last two schema steps (5: key facts,
expand; 6: key facts required, contract): the store's statements follow the schema a
hanko was built for, so that tree writes certificates exactly as a hanko of schema 4
does, without the key type and SPKI hash columns."""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path

import httpx
import pytest

from core.store import pg_schema
from tests.conftest import DevCA, csr, hanko, init_ca, tls, token
from tests.core.cmd.test_serve_postgresql import Serving, issuer_key, open_account
from tests.pg_server import PostgresServer
from tests.stores import PgDatabase, new_database

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]
NEW_STEPS = ("0005_", "0006_")


def previous_hanko(folder: Path) -> dict[str, str]:
    """The environment that runs the previous hanko: a copy of the packages without the
    new schema steps, first on the path of every process it starts."""
    for package in ("core", "signer", "ocsp", "crl", "bench"):
        shutil.copytree(
            ROOT / package, folder / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    for step in (folder / "core" / "store" / "migrations").iterdir():
        if step.name.startswith(NEW_STEPS):
            step.unlink()
    return {**os.environ, "PYTHONPATH": str(folder)}


class Traffic:
    """Issuance through several processes, one request after another per process, until
    stopped: what each answered, and every third certificate revoked right away."""

    def __init__(self, targets: list[Serving], secret: str, admin_token: str) -> None:
        self.issued: list[str] = []
        self.revoked: list[str] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(t, secret, admin_token, n), daemon=True)
            for n, t in enumerate(targets)
        ]
        self._lock = threading.Lock()

    def _run(self, target: Serving, secret: str, admin_token: str, n: int) -> None:
        with (
            httpx.Client(base_url=target.base, verify=tls(target.ca), timeout=60,
                         headers={"Authorization": f"Bearer {secret}"}) as rpc,
            httpx.Client(base_url=target.base, verify=tls(target.ca), timeout=60,
                         headers={"Authorization": f"Bearer {admin_token}"}) as admin,
        ):  # fmt: skip
            i = 0
            while not self._stop.is_set():
                i += 1
                body = {"csr": csr(f"p{n}-{i}.units.co.jp"), "profile": "ov",
                        "organization": "units"}  # fmt: skip
                r = rpc.post("/v1/certificates", json=body)
                if r.status_code != 201:
                    with self._lock:
                        self.failures.append(f"issue {r.status_code} {r.text[:200]}")
                    continue
                serial = r.json()["serial"]
                with self._lock:
                    self.issued.append(serial)
                if i % 3 == 0:
                    r = admin.post(f"/v1/certificates/{serial}/revoke",
                                   json={"reason": "superseded"})  # fmt: skip
                    with self._lock:
                        if r.status_code == 200:
                            self.revoked.append(serial)
                        else:
                            self.failures.append(f"revoke {r.status_code} {r.text[:200]}")

    def __enter__(self) -> Traffic:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=120)
        assert not any(t.is_alive() for t in self._threads), "a request hung"

    def wait_for(self, count: int) -> None:
        """Until `count` more certificates were issued."""
        want = len(self.issued) + count
        for _ in range(1200):
            if len(self.issued) >= want or self.failures:
                return
            threading.Event().wait(0.05)


def schema(database: PgDatabase) -> int:
    with database.admin() as conn:
        return pg_schema.applied(conn)


def facts(database: PgDatabase) -> tuple[int, int]:
    """(certificates, those without a key type)."""
    with database.admin() as conn:
        row = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE key_type IS NULL) FROM certificates"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def test_two_processes_keep_serving_while_the_schema_moves(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    old_env = previous_hanko(tmp_path / "previous")
    database = new_database(postgres, migrate=False)
    ca: DevCA = init_ca(tmp_path / "ca", store=database, env=old_env)
    assert schema(database) == 4
    cfg = str(ca.config_path)

    a = Serving(ca, "a", env=old_env)
    b = Serving(ca, "b", env=old_env)
    processes = [a, b]
    phases: list[Traffic] = []
    try:
        with a.admin() as admin:
            open_account(admin, "units", {"id": "units-1", "kind": "non_pooled",
                                          "quantity": 5000})  # fmt: skip
        secret = issuer_key(a, "units")
        admin_token = token(ca, "admin")
        with Traffic([a, b], secret, admin_token) as traffic:
            phases.append(traffic)
            traffic.wait_for(10)
            # The plan: step 5 may go now, step 6 waits for the previous hanko.
            plan = hanko("store", "migrate", "-c", cfg, "--plan", "--json", check=True)
            steps = {s["version"]: s for s in json.loads(plan.stdout)["steps"]}
            assert sorted(steps) == [5, 6]
            assert (steps[5]["kind"], steps[5]["waits_for"]) == ("expand", "")
            assert steps[6]["kind"] == "contract"
            assert "of schema 4" in steps[6]["waits_for"]
            assert any("ADD COLUMN" in s for s in steps[5]["sql"])

            # The schema moves while both serve: step 5 is applied, step 6 refused.
            moved = hanko("store", "migrate", "-c", cfg)
            assert moved.returncode != 0
            assert "applied migrations 5" in moved.stderr
            assert "step 6 (contract) needs every connected hanko" in moved.stderr
            assert "Traceback" not in moved.stderr
            assert schema(database) == 5
            traffic.wait_for(10)
        # What the previous hanko issued since has no key facts: it does not know them.
        total, missing = facts(database)
        assert 0 < missing < total

        # B drains and restarts on the new code; A keeps serving on the old.
        b.drain()
        b = Serving(ca, "b2")
        processes.append(b)
        with Traffic([a, b], secret, admin_token) as traffic:
            phases.append(traffic)
            traffic.wait_for(10)
            refused = hanko("store", "migrate", "-c", cfg)
            assert refused.returncode != 0
            assert "of schema 4" in refused.stderr
            traffic.wait_for(10)
        a.drain()
        a = Serving(ca, "a2")
        processes.append(a)
        with Traffic([a, b], secret, admin_token) as traffic:
            phases.append(traffic)
            traffic.wait_for(10)
            # No previous hanko is left: the contract step goes, while both serve.
            done = hanko("store", "migrate", "-c", cfg, "--json", check=True)
            assert json.loads(done.stdout) == {"applied": [6], "version": 6}
            traffic.wait_for(10)
    finally:
        for p in processes:
            p.stop()

    issued = [s for t in phases for s in t.issued]
    revoked = {s for t in phases for s in t.revoked}
    assert [f for t in phases for f in t.failures] == [], "no refusal, no 5xx"
    assert len(issued) >= 50
    # Nothing acknowledged is lost: every certificate, with its status and key facts.
    with database.admin() as conn:
        rows = dict(conn.execute("SELECT serial_hex, status FROM certificates").fetchall())
    assert {s: rows.get(s) for s in issued} == {
        s: "revoked" if s in revoked else "good" for s in issued
    }
    assert facts(database) == (len(rows), 0)
    found = hanko("certs", "search", "-c", cfg, "--key-type", ca.key_type, "--json",
                  "--limit", "100000", check=True)  # fmt: skip
    assert {c["serial"] for c in json.loads(found.stdout)["certificates"]} == set(rows)
    books = hanko("licenses", "check", "-c", cfg)
    assert books.returncode == 0, books.stdout + books.stderr
    # The previous hanko does not start on the contracted schema, and says why.
    old = hanko("certs", "search", "-c", cfg, env=old_env)
    assert old.returncode != 0
    assert "no hanko older than schema 5 runs on" in old.stderr
    assert "Traceback" not in old.stderr
