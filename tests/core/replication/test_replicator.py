"""The CA side of status replication with a real redis-server on loopback and `hanko
serve`: each pre-signed response, revocation and CRL reaches Redis after its commit,
with its expiry and a change notification; a Redis that is down holds nothing up and
is caught up when it is back, rebuilt when it comes back empty; `hanko replication
status` shows the lag, `resync` rebuilds it."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from prometheus_client.parser import text_string_to_metric_families

from core.store import serial_bytes
from core.store.configured import open_store
from core.store.keys import serial_key
from core.store.records import OcspRecord
from ocsp.status.redis_layout import CHANGE, CRL_VALUE, PROFILE, Layout
from tests.conftest import DevCA, client, hanko, paying_org, serving
from tests.ocsp.test_answers import issue
from tests.redis_server import RedisServer

LAYOUT = Layout("hanko:")


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis")
    yield server
    server.close()


def table(server: RedisServer) -> str:
    return f'\n[replication]\nredis = "{server.url}"\n'


def until(check: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("not within the time allowed")
        time.sleep(0.02)


def ocsp_key(cert: x509.Certificate) -> bytes:
    return LAYOUT.ocsp(serial_key(serial_bytes(cert.serial_number)))


def stored(ca: DevCA, cert: x509.Certificate) -> bytes:
    """The record bytes the store holds for the certificate (read-only, while serving)."""
    with open_store(ca.config, readonly=True) as store, store.read() as txn:
        raw = txn.ocsp_raw(serial_key(serial_bytes(cert.serial_number)))
    assert raw is not None
    return raw


def status_of(ca: DevCA) -> dict[str, object]:
    out = hanko("replication", "status", "-c", str(ca.config_path), "--json")
    assert out.returncode == 0, out.stderr
    got: dict[str, object] = json.loads(out.stdout)
    return got


def test_responses_revocations_and_crls_reach_redis(
    fresh_ca: DevCA, redis_server: RedisServer
) -> None:
    r = redis_server.client()
    pubsub = r.pubsub()
    pubsub.subscribe(LAYOUT.channel)
    with serving(fresh_ca, table(redis_server)) as (base, ca, _):
        admin = client(base, ca, "admin")
        paying_org(admin, "acme")
        rpc = client(base, ca, "rpc", "acme")
        cert = issue(rpc)
        key = ocsp_key(cert)
        until(lambda: r.get(key) is not None)
        assert r.get(key) == stored(ca, cert)
        rec = OcspRecord.decode(r.get(key))
        # Expires at the response's nextUpdate.
        assert abs(r.pexpiretime(key) - rec.next_update * 1000) <= 1000
        assert r.keys(b"hanko:e:*"), "the envelope of the responder key"
        profile = PROFILE.decode(r.get(LAYOUT.profile))
        issuing = (ca.directory / "ca" / "issuing.pem").read_bytes()
        assert x509.load_der_x509_certificate(profile.issuer) == x509.load_pem_x509_certificate(
            issuing
        )
        assert (profile.ocsp_path, profile.crl_path) == ("/ocsp", "/crl")
        assert set(profile.ca_files) == {"/ca/issuing.cer", "/ca/root.cer"}
        assert profile.root_crl_path == "/crl/root.crl"
        assert r.keys(b"hanko:c:*.crl"), "the CRL files"
        crl_key = sorted(r.keys(b"hanko:c:*.crl"))[0]
        name = crl_key.split(b":", 2)[2].decode()
        value = CRL_VALUE.decode(r.get(crl_key))
        assert value.der == (ca.directory / "crl" / name).read_bytes()

        before = r.get(key)
        r2 = rpc.post(
            f"/v1/certificates/{cert.serial_number:x}/revoke", json={"reason": "superseded"}
        )
        assert r2.status_code == 200, r2.text
        started = time.monotonic()
        until(lambda: r.get(key) != before)
        assert time.monotonic() - started < 1.0
        assert r.get(key) == stored(ca, cert)
        notified: list[bytes] = []
        while (msg := pubsub.get_message(timeout=0.5)) is not None:
            if msg["type"] == "message":
                notified += CHANGE.decode(msg["data"]).keys
        assert key in notified
        status = status_of(ca)
        assert status["lag"] == 0
        assert status["redis_seq"] == status["cursor"] == status["fed"]


def test_redis_down_holds_nothing_up_and_an_empty_one_is_rebuilt(
    fresh_ca: DevCA, redis_server: RedisServer
) -> None:
    with serving(fresh_ca, table(redis_server)) as (base, ca, _):
        admin = client(base, ca, "admin")
        paying_org(admin, "acme")
        rpc = client(base, ca, "rpc", "acme")
        first = issue(rpc)
        until(lambda: redis_server.client().get(ocsp_key(first)) is not None)
        redis_server.kill()
        later = [issue(rpc, f"www{i}.example.co.jp") for i in range(3)]  # still 201
        status = status_of(ca)
        assert status["lag"] > 0
        assert status["redis_error"]
        redis_server.start()  # back, empty
        r = redis_server.client()
        until(lambda: all(r.get(ocsp_key(c)) is not None for c in [first, *later]), 15)
        for c in [first, *later]:
            assert r.get(ocsp_key(c)) == stored(ca, c)
        until(lambda: status_of(ca)["lag"] == 0)
        scraped = httpx.get(f"http://{ca.config.metrics.listen}/metrics").text
        values = {
            s.name: s.value
            for family in text_string_to_metric_families(scraped)
            for s in family.samples
            if s.name.startswith("hanko_replication")
        }
        # Rebuilt when it first met the empty Redis, and again when it came back empty.
        assert values["hanko_replication_resyncs_total"] == 2
        assert values["hanko_replication_lag"] == 0
        assert values["hanko_replication_errors_total"] >= 1


def test_resync_from_the_command_line(fresh_ca: DevCA, redis_server: RedisServer) -> None:
    with serving(fresh_ca, table(redis_server)) as (base, ca, _):
        admin = client(base, ca, "admin")
        paying_org(admin, "acme")
        rpc = client(base, ca, "rpc", "acme")
        certs = [issue(rpc, f"www{i}.example.co.jp") for i in range(3)]
    r = redis_server.client()
    r.flushall()
    out = hanko("replication", "resync", "-c", str(fresh_ca.config_path), "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["keys"] >= 3
    for c in certs:
        assert r.get(ocsp_key(c)) == stored(fresh_ca, c)
    status = status_of(fresh_ca)
    assert status["lag"] == 0


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ('redis = "http://127.0.0.1:6379"', "replication.redis: a redis:// or rediss:// URL"),
        ('redis = "redis://:hunter2@127.0.0.1:6379"', "no password in the URL"),
        ('redis = "redis://127.0.0.1:6379"\npassword = {file = "nope"}', "replication.password"),
        ('redis = "redis://127.0.0.1:6379"\nbatch = 0', "replication.batch"),
    ],
)
def test_check_config_on_replication(fresh_ca: DevCA, table: str, problem: str) -> None:
    fresh_ca.config_path.write_text(
        fresh_ca.config_path.read_text() + f"\n[replication]\n{table}\n"
    )
    out = hanko("check-config", "-c", str(fresh_ca.config_path))
    assert out.returncode == 1
    assert problem in out.stderr
    assert "hunter2" not in out.stderr
