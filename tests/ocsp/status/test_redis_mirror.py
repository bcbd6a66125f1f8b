"""Status on many hosts: `hanko serve` replicates to a Redis primary, two read-only
replicas follow it, and two `hanko responder` instances (127.0.0.2 and 127.0.0.3, each
with its own replica and no store or HSM) answer OCSP and serve the CRLs, with real
openssl ocsp as the client. Revocations reach them within a second; a replica whose
link is down says so on /readyz; the primary killed, then back empty, is rebuilt with
nothing acked missing; with the CA host and the primary gone, both keep answering."""

from __future__ import annotations

import json
import select
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.conftest import BIN, DevCA, client, free_port, paying_org, serving
from tests.ocsp.test_answers import issue
from tests.redis_server import RedisServer

HOSTS = ("127.0.0.2", "127.0.0.3")
MAX_LAG = 1.0


def until(check: Callable[[], bool], seconds: float, what: str) -> float:
    """Seconds until `check()` held; fails after `seconds`."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > seconds:
            raise AssertionError(f"{what}: not within {seconds} s")
        time.sleep(0.02)
    return time.monotonic() - started


class Responder:
    """`hanko responder -c RESPONDER.toml` on one host address, from one replica."""

    def __init__(self, tmp: Path, host: str, port: int, replica: RedisServer) -> None:
        self.base = f"http://{host}:{port}"
        config = tmp / f"responder-{host}.toml"
        config.write_text(
            "[responder]\n"
            f'redis = "{replica.url}"\n'
            f'listen = "{host}:{port}"\n'
            "processes = 2\n"
            f'max_lag = "{MAX_LAG:g}s"\n'
        )
        self.log = tmp / f"responder-{host}.log"
        with self.log.open("w") as log:
            self.proc = subprocess.Popen(
                [str(BIN / "hanko"), "responder", "-c", str(config)],
                stdout=subprocess.PIPE, stderr=log, text=True,
            )  # fmt: skip
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 40)
        line = self.proc.stdout.readline() if ready else ""
        if "responder serving" not in line:
            self.proc.kill()
            pytest.fail(f"hanko responder did not come up: {line}{self.log.read_text()}")

    def status(self, cert: x509.Certificate, files: Path) -> str:
        """ "good", "revoked", or what else openssl ocsp said (verified against the chain)."""
        leaf = files / f"{cert.serial_number:x}.pem"
        leaf.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        out = subprocess.run(
            ["openssl", "ocsp", "-issuer", str(files / "issuing.pem"), "-cert", str(leaf),
             "-url", f"{self.base}/ocsp", "-CAfile", str(files / "chain.pem"), "-no_nonce"],
            capture_output=True, text=True, check=False, timeout=30,
        )  # fmt: skip
        report = out.stdout + out.stderr
        if "Response verify OK" in report and f"{leaf}: good" in report:
            return "good"
        if "Response verify OK" in report and f"{leaf}: revoked" in report:
            return "revoked"
        return report.strip()

    def ready(self) -> tuple[int, dict[str, object]]:
        r = httpx.get(f"{self.base}/readyz", timeout=5)
        body: dict[str, object] = r.json()
        return r.status_code, body

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def redis_trio(tmp_path: Path) -> Iterator[tuple[RedisServer, RedisServer, RedisServer]]:
    primary = RedisServer(tmp_path / "primary")
    replicas = [
        RedisServer(tmp_path / f"replica{i}", replica_of=primary) for i in range(len(HOSTS))
    ]
    try:
        yield primary, replicas[0], replicas[1]
    finally:
        for server in (*replicas, primary):
            server.close()


def crl_files(ca: DevCA) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((ca.directory / "crl").glob("*.crl"))}


@pytest.mark.slow
def test_responder_hosts_answer_from_redis_replicas(
    fresh_ca: DevCA, redis_trio: tuple[RedisServer, RedisServer, RedisServer], tmp_path: Path
) -> None:
    primary, *replicas = redis_trio
    files = tmp_path / "files"
    files.mkdir()
    issuing = fresh_ca.directory / "ca" / "issuing.pem"
    (files / "issuing.pem").write_bytes(issuing.read_bytes())
    (files / "chain.pem").write_bytes(
        (fresh_ca.directory / "ca" / "root.pem").read_bytes() + issuing.read_bytes()
    )
    table = f'\n[replication]\nredis = "{primary.url}"\n'
    port = free_port()
    responders: list[Responder] = []
    with serving(fresh_ca, table) as (base, ca, serve_proc):
        try:
            admin = client(base, ca, "admin")
            paying_org(admin, "acme")
            rpc = client(base, ca, "rpc", "acme")
            first = issue(rpc)
            responders = [
                Responder(tmp_path, h, port, r) for h, r in zip(HOSTS, replicas, strict=True)
            ]
            one, two = responders

            # A new certificate is good on both hosts, verified by openssl against the CA.
            second = issue(rpc, "second.example.co.jp")
            for r in responders:
                until(lambda r=r: r.status(second, files) == "good", 5, f"good on {r.base}")
                assert r.status(first, files) == "good"
                code, ready = r.ready()
                assert code == 200, ready
                assert ready["ready"] is True
                assert ready["role"] == "replica"
                assert ready["link"] == "up"

            # Revoked: served as revoked by both within a second of the API's answer.
            revoked = rpc.post(
                f"/v1/certificates/{first.serial_number:x}/revoke", json={"reason": "superseded"}
            )
            assert revoked.status_code == 200, revoked.text
            acked = time.monotonic()
            for r in responders:
                until(lambda r=r: r.status(first, files) == "revoked", 3, f"revoked on {r.base}")
                assert time.monotonic() - acked < 1.0, f"revocation took too long on {r.base}"

            # The CRLs the responders serve are the CA host's files, byte for byte
            # (again, if a rebuild landed between the two reads).
            def crls_equal() -> bool:
                on_disk = crl_files(ca)
                return bool(on_disk) and all(
                    httpx.get(f"{r.base}/crl/{name}", timeout=5).content == der
                    for r in responders
                    for name, der in on_disk.items()
                )

            until(crls_equal, 10, "CRLs equal to the CA host's")
            cer = httpx.get(f"{one.base}/ca/issuing.cer", timeout=5)
            assert cer.status_code == 200
            assert x509.load_der_x509_certificate(cer.content) == x509.load_pem_x509_certificate(
                issuing.read_bytes()
            )

            # One replica's link goes down: that host says it is behind, the other does
            # not; it never says "good" for a certificate it has not seen.
            replicas[1].follow(None)
            third = issue(rpc, "third.example.co.jp")
            until(lambda: one.status(third, files) == "good", 5, "good on the current host")
            assert "unauthorized" in two.status(third, files)
            until(lambda: two.ready()[0] == 503, MAX_LAG + 5, "the lagging host not ready")
            time.sleep(2.5)  # each responder process looks once a second: all have seen it
            for _ in range(4):  # whichever of the host's processes answers
                code, behind = two.ready()
                assert code == 503, behind
                assert behind["link"] == "down"
                assert float(str(behind["lag_seconds"])) > MAX_LAG
                assert "down" in str(behind["reason"])
                assert one.ready()[0] == 200
            replicas[1].follow(primary)
            until(lambda: two.status(third, files) == "good", 10, "caught up after the link")
            until(lambda: two.ready()[0] == 200, 5, "ready again")

            # The primary is killed: hanko serve goes on issuing (acked while Redis is
            # down) and both hosts go on answering what they have.
            primary.kill()
            fourth = issue(rpc, "fourth.example.co.jp")
            for r in responders:
                assert r.status(first, files) == "revoked"
                assert r.status(second, files) == "good"
                until(lambda r=r: r.ready()[0] == 503, MAX_LAG + 5, "not ready without a primary")
            # It comes back empty; the replicas follow it (and are empty a while): the
            # hosts keep their copy, and the CA host rebuilds it without a restart.
            # Meanwhile a client keeps asking both hosts about a certificate they had.
            answers: list[str] = []
            asking = threading.Event()
            asking.set()

            def keep_asking() -> None:
                while asking.is_set():
                    answers.extend(r.status(second, files) for r in responders)

            asker = threading.Thread(target=keep_asking)
            asker.start()
            try:
                primary.start()
                for r in responders:
                    until(lambda r=r: r.status(fourth, files) == "good", 20, f"rebuilt on {r.base}")
            finally:
                asking.clear()
                asker.join(timeout=60)
            assert len(answers) >= 4
            assert set(answers) == {"good"}, [a for a in answers if a != "good"][:3]
            for r in responders:
                assert r.status(first, files) == "revoked"
                assert r.status(second, files) == "good"
                assert r.status(third, files) == "good"
                until(lambda r=r: r.ready()[0] == 200, 5, "ready after the rebuild")
            assert serve_proc.poll() is None
            status = subprocess.run(
                [str(BIN / "hanko"), "replication", "status", "-c", str(ca.config_path), "--json"],
                capture_output=True, text=True, check=False, timeout=60,
            )  # fmt: skip
            assert status.returncode == 0, status.stderr
            assert json.loads(status.stdout)["lag"] == 0
        except BaseException:
            for r in responders:
                r.close()
                print(r.log.read_text())
            raise

    # The CA host and the primary are gone; one replica too: both hosts still answer
    # for every certificate from what they hold.
    primary.kill()
    replicas[0].kill()
    try:
        for r in responders:
            assert r.status(first, files) == "revoked"
            for cert in (second, third, fourth):
                assert r.status(cert, files) == "good"
            until(lambda r=r: r.ready()[0] == 503, MAX_LAG + 5, "not ready, alone")
            assert r.status(first, files) == "revoked"
    finally:
        for r in responders:
            r.close()


def test_a_bad_responder_file_is_one_line_per_problem(tmp_path: Path) -> None:
    bad = tmp_path / "responder.toml"
    bad.write_text(
        '[responder]\nredis = "redis://:hunter2@127.0.0.1:6379/0"\nlistn = "127.0.0.1:80"\n'
    )
    out = subprocess.run(
        [str(BIN / "hanko"), "responder", "-c", str(bad)],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert lines == [
        "hanko: error: responder.listn: unknown key (did you mean 'responder.listen'?)",
        "hanko: error: responder.listen: required key is missing",
    ], out.stderr
    bad.write_text('[responder]\nredis = "redis://:hunter2@127.0.0.1:6379/0"\nlisten = "x"\n')
    out = subprocess.run(
        [str(BIN / "hanko"), "responder", "-c", str(bad)],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert out.returncode == 1
    assert "hunter2" not in out.stderr
    assert "responder.redis: no password in the URL" in out.stderr
    assert "responder.listen:" in out.stderr
    assert "Traceback" not in out.stderr
