"""Several `hanko serve` processes on one PostgreSQL store: they all issue, one leads (the
OCSP refresher, the CRL updater, the reminders), and another takes over when it dies.
Real processes, a real cluster, real HTTP."""

from __future__ import annotations

import concurrent.futures
import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from core.store import serial_bytes
from tests.conftest import BIN, DevCA, csr, free_ports, hanko, init_ca, keyed, tls, token
from tests.pg_server import PostgresServer
from tests.stores import PgDatabase, new_database

pytestmark = pytest.mark.slow


class Serving:
    """One `hanko serve` on its own copy of the CA's configuration (its own ports)."""

    def __init__(self, ca: DevCA, name: str, *, env: dict[str, str] | None = None) -> None:
        api, status, metrics = free_ports(3)
        text = ca.config_path.read_text()
        for old, new in (("127.0.0.1:8443", api), ("127.0.0.1:8080", status),
                         ("127.0.0.1:9464", metrics)):  # fmt: skip
            text = text.replace(old, f"127.0.0.1:{new}")
        self.config = ca.directory / f"hanko-{name}.toml"
        self.config.write_text(text)
        self.base = f"https://127.0.0.1:{api}"
        self.status = f"http://127.0.0.1:{status}"
        self.log = ca.directory / f"serve-{name}.log"
        self.ca = ca
        with self.log.open("w") as log:
            self.proc = subprocess.Popen(
                [str(BIN / "hanko"), "serve", "-c", str(self.config)],
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                env=env,
            )
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 60)
        line = self.proc.stdout.readline() if ready else ""
        if "serving the API" not in line:
            self.proc.kill()
            pytest.fail(f"hanko serve {name} did not come up: {line}{self.log.read_text()}")

    def admin(self) -> httpx.Client:
        return keyed(self.base, self.ca, token(self.ca, "admin"))

    def leader(self) -> dict[str, Any]:
        with self.admin() as admin:
            stats: dict[str, Any] = admin.get("/v1/statistics").json()
        return stats

    def drain(self) -> None:
        """SIGTERM, as a rolling upgrade stops a host: requests in flight are answered."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                pytest.fail("hanko serve did not drain within 60 s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def pg_ca(postgres: PostgresServer, tmp_path: Path) -> tuple[DevCA, PgDatabase]:
    database = new_database(postgres, migrate=False)
    return init_ca(tmp_path / "ca", store=database), database


@pytest.fixture
def two(pg_ca: tuple[DevCA, PgDatabase]) -> Iterator[tuple[Serving, Serving]]:
    ca, _ = pg_ca
    a = Serving(ca, "a")
    try:
        b = Serving(ca, "b")
    except BaseException:
        a.stop()
        raise
    try:
        yield a, b
    finally:
        a.stop()
        b.stop()


def open_account(admin: httpx.Client, account: str, license_body: dict[str, Any]) -> None:
    for path, body in (
        ("/v1/admin/accounts", {"id": account, "name": f"{account} K.K."}),
        (f"/v1/admin/accounts/{account}/licenses", license_body),
        ("/v1/admin/organizations", {
            "account": account, "id": account, "level": "ov", "organization": "Acme Japan K.K.",
            "country": "JP", "state": "Tokyo-to", "locality": "Chiyoda-ku"}),
        (f"/v1/admin/organizations/{account}/domains",
         {"domain": f"{account}.co.jp", "method": "dns-txt"}),
    ):  # fmt: skip
        r = admin.post(path, json=body)
        assert r.status_code == 201, r.text


def burst(
    targets: list[Serving], secret: str, account: str, n: int, *, on_answer: Any = None
) -> list[tuple[int, dict[str, Any] | None]]:
    """`n` issuances at once, alternating between `targets`: (status, body) each; a
    connection that failed is status 0."""
    clients = [
        httpx.Client(base_url=t.base, verify=tls(t.ca), timeout=120,
                     headers={"Authorization": f"Bearer {secret}"},
                     limits=httpx.Limits(max_connections=64))
        for t in targets
    ]  # fmt: skip
    bodies = [
        {"csr": csr(f"h{i}.{account}.co.jp"), "profile": "ov", "organization": account}
        for i in range(n)
    ]

    def one(i: int) -> tuple[int, dict[str, Any] | None]:
        try:
            r = clients[i % len(clients)].post("/v1/certificates", json=bodies[i])
        except httpx.TransportError:
            return 0, None
        answer = (r.status_code, r.json())
        if on_answer is not None:
            on_answer(answer)
        return answer

    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=64) as pool:
            return list(pool.map(one, range(n)))
    finally:
        for c in clients:
            c.close()


def ocsp_status(s: Serving, pem: str) -> ocsp.OCSPCertStatus:
    """What the status listener of `s` answers for a certificate (it reads the store)."""
    issuer = x509.load_pem_x509_certificate((s.ca.directory / "ca" / "issuing.pem").read_bytes())
    cert = x509.load_pem_x509_certificate(pem.encode())
    req = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1()).build()  # noqa: S303
    r = httpx.post(f"{s.status}/ocsp", content=req.public_bytes(serialization.Encoding.DER),
                   headers={"Content-Type": "application/ocsp-request"}, timeout=10)  # fmt: skip
    answer = ocsp.load_der_ocsp_response(r.content)
    assert answer.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    return answer.certificate_status


def issuer_key(s: Serving, *accounts: str) -> str:
    with s.admin() as admin:
        r = admin.post("/v1/admin/keys", json={"role": "issuer", "accounts": list(accounts)})
    assert r.status_code == 201, r.text
    secret: str = r.json()["secret"]
    return secret


def test_two_processes_share_a_licence_and_hand_over_the_lead(
    two: tuple[Serving, Serving], pg_ca: tuple[DevCA, PgDatabase]
) -> None:
    a, b = two
    ca, database = pg_ca
    assert a.leader()["leader"]["leader"] is True
    assert b.leader()["leader"]["leader"] is False

    # 400 issuances at once, half to each process, against 100 units.
    with a.admin() as admin:
        open_account(admin, "units", {"id": "units-100", "kind": "non_pooled", "quantity": 100})
    answers = burst([a, b], issuer_key(a, "units"), "units", 400)
    issued = [body for status, body in answers if status == 201]
    refused = [body for status, body in answers if status != 201]
    assert len(issued) == 100
    assert {status for status, _ in answers} == {201, 422}, "no 5xx, no lost reply"
    assert all(body is not None and body["error"] == "license_exhausted" for body in refused)
    serials = {body["serial"] for body in issued if body is not None}
    assert len(serials) == 100
    with database.open() as store:
        assert store.stat()["certs"] == 100
    check = hanko("licenses", "check", "-c", str(ca.config_path))
    assert check.returncode == 0, check.stdout + check.stderr

    # Both status listeners answer from the database: a revocation made through one
    # process is served by the other's responders.
    first = issued[0]
    assert first is not None
    assert ocsp_status(a, first["certificate"]) is ocsp.OCSPCertStatus.GOOD
    with b.admin() as admin:
        r = admin.post(f"/v1/certificates/{first['serial']}/revoke", json={"reason": "superseded"})
    assert r.status_code == 200, r.text
    deadline = time.monotonic() + 5
    while ocsp_status(a, first["certificate"]) is not ocsp.OCSPCertStatus.REVOKED:
        assert time.monotonic() < deadline, "the revocation was not served within 5 s"
        time.sleep(0.1)

    # A second burst; the leader is killed (-9) in the middle of it.
    with a.admin() as admin:
        open_account(admin, "pool", {"id": "pool-5y", "kind": "pooled", "quantity": 1000,
                                     "years": 5})  # fmt: skip
    killed_at: list[float] = []
    acked: list[str] = []
    once = threading.Lock()

    def kill_midway(answer: tuple[int, Any]) -> None:
        if answer[0] != 201:
            return
        with once:
            acked.append(answer[1]["serial"])
            if len(acked) >= 40 and not killed_at:
                killed_at.append(time.monotonic())
                os.kill(a.proc.pid, signal.SIGKILL)

    answers = burst([a, b], issuer_key(a, "pool"), "pool", 160, on_answer=kill_midway)
    assert killed_at, "the leader was not killed mid-burst"
    assert any(status == 0 for status, _ in answers), "requests to the killed process failed"
    assert any(status == 201 for status, _ in answers[1::2]), "the other went on issuing"

    # The other process takes the lead, and its refresher re-signs what falls due.
    with database.open() as store:
        serial = serial_bytes(int(acked[0], 16))
        with store.read() as txn:
            before = txn.get_ocsp(serial)
        assert before is not None
        while True:
            stats = b.leader()
            if stats["leader"]["leader"]:
                break
            assert time.monotonic() - killed_at[0] < 10, "no new leader within 10 s"
            time.sleep(0.2)
        store.write(lambda t: t.schedule_ocsp(serial, 0))
        while True:
            with store.read() as txn:
                now = txn.get_ocsp(serial)
            assert now is not None
            if now.refresh_at > 0 and now.this_update >= before.this_update:
                break
            assert time.monotonic() - killed_at[0] < 10, "no refresher within 10 s of the kill"
            time.sleep(0.2)
        took = time.monotonic() - killed_at[0]
        with store.read() as txn:
            missing = [s for s in acked if txn.get_cert(serial_bytes(int(s, 16))) is None]
    assert not missing, "acknowledged certificates lost"
    print(f"refresher taken over {took:.1f} s after the kill")
    check = hanko("licenses", "check", "-c", str(b.config))
    assert check.returncode == 0, check.stdout + check.stderr
