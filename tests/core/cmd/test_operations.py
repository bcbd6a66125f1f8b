"""What an operator runs `hanko serve` with: Prometheus metrics that move with traffic,
JSON logs a shipper can parse line by line, SIGHUP that takes a renewed TLS certificate
while serving, and SIGTERM that answers a batch under way before exiting 0."""

from __future__ import annotations

import json
import re
import signal
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from prometheus_client.parser import text_string_to_metric_families

from core.issuance.pem import serial_from_hex
from core.store import LmdbStore
from tests.conftest import DevCA, Service, client, csr, hanko, paying_org, serve_log, tls, token
from tests.ocsp.test_answers import issue, ocsp_base

JSON_LOGS = {"replace": [('format = "text"', 'format = "json"')]}


def metrics_base(ca: DevCA) -> str:
    return f"http://{ca.config.metrics.listen}"


def scrape(ca: DevCA) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = httpx.get(metrics_base(ca) + "/metrics", timeout=10)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def openssl_ocsp(ca: DevCA, cert: x509.Certificate, tmp_path: Path) -> str:
    from cryptography.hazmat.primitives import serialization

    leaf = tmp_path / "leaf.pem"
    leaf.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    out = subprocess.run(
        [
            "openssl",
            "ocsp",
            "-issuer",
            str(ca.directory / "ca" / "issuing.pem"),
            "-cert",
            str(leaf),
            "-url",
            f"{ocsp_base(ca)}/ocsp",
            "-noverify",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout


PER_ACCOUNT = {
    "replace": [("# Prometheus: GET /metrics", "# Prometheus: GET /metrics\nper_account = true")]
}


@pytest.mark.parametrize("service", [PER_ACCOUNT], indirect=True)
def test_metrics_parse_and_move_with_traffic(service: Service, tmp_path: Path) -> None:
    base, ca, _ = service
    admin = client(base, ca, "admin")
    paying_org(admin, "acme")
    before = scrape(ca)
    rpc = client(base, ca, "rpc", "acme")
    cert = issue(rpc)
    bad = rpc.post("/v1/certificates", json={"csr": "x", "profile": "ov", "organization": "acme"})
    assert bad.status_code == 422
    assert "good" in openssl_ocsp(ca, cert, tmp_path)
    httpx.get(ocsp_base(ca) + "/nothing-here", timeout=10)

    deadline = time.monotonic() + 10  # the responders report once a second
    while True:
        after = scrape(ca)
        if (
            value(after, "hanko_ocsp_responses_total", answer="successful") >= 1
            and value(after, "hanko_status_not_found_total") >= 1
        ):
            break
        assert time.monotonic() < deadline, "the OCSP answer never reached the metrics"
        time.sleep(0.3)

    route = "/v1/certificates"
    for status in ("201", "422"):
        key = {"route": route, "method": "POST", "status": status}
        assert (
            value(after, "hanko_api_requests_total", **key)
            == value(before, "hanko_api_requests_total", **key) + 1
        ), status
    assert value(after, "hanko_issuance_total", profile="ov", result="issued") == 1
    assert value(after, "hanko_issuance_duration_seconds_count", profile="ov") >= 1
    assert value(after, "hanko_certificates_issued_total") == 1
    assert value(after, "hanko_status_not_found_total") >= 1
    assert value(after, "hanko_store_commit_duration_seconds_count") > value(
        before, "hanko_store_commit_duration_seconds_count"
    )
    assert value(after, "hanko_signer_batch_size_count") > value(
        before, "hanko_signer_batch_size_count"
    )
    assert value(after, "hanko_signer_workers_alive") >= 1
    assert value(after, "hanko_ocsp_responders_alive") >= 1
    assert value(after, "hanko_store_map_used_bytes") > 0
    assert value(after, "hanko_crl_age_seconds", crl="0.crl") >= 0
    assert ("hanko_crl_build_seconds", (("crl", "0.crl"),)) in after
    # The licence paid one certificate-year's worth of its pool.
    pool = {"account": "acme", "license": "acme-pool", "kind": "pooled"}
    available = [
        v
        for (n, labels), v in after.items()
        if n == "hanko_license_available" and set(pool.items()) <= set(labels)
    ]
    assert len(available) == 1
    assert 0 < available[0] < value(before, "hanko_license_available", unit=_unit(before), **pool)
    assert httpx.get(metrics_base(ca) + "/other", timeout=10).status_code == 404


def test_per_account_series_are_off_by_default(service: Service) -> None:
    base, ca, _ = service
    paying_org(client(base, ca, "admin"), "acme")
    assert not [name for name, _ in scrape(ca) if name == "hanko_license_available"]


def _unit(samples: dict[Any, float]) -> str:
    for name, labels in samples:
        if name == "hanko_license_available":
            return dict(labels)["unit"]
    raise AssertionError("no licence gauge")


@pytest.mark.parametrize("service", [JSON_LOGS], indirect=True)
def test_json_logs_parse_line_by_line_and_hold_no_secret(service: Service) -> None:
    base, ca, proc = service
    admin = client(base, ca, "admin")
    paying_org(admin, "acme")
    rpc = client(base, ca, "rpc", "acme")
    serial = f"{issue(rpc).serial_number:x}"
    assert rpc.get(f"/v1/certificates/{serial}").status_code == 200
    refused = httpx.get(
        base + "/v1/statistics",
        verify=tls(ca),
        timeout=10,
        headers={"Authorization": "Bearer not-a-key", "X-Request-Id": "trace-42"},
    )
    assert refused.status_code == 401
    assert refused.headers["x-request-id"] == "trace-42"
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    err = serve_log(ca).read_text()
    assert proc.returncode == 0, err
    lines = [json.loads(line) for line in err.splitlines() if line.strip()]
    assert len(lines) >= 5
    for line in lines:
        assert {"time", "level", "event", "message"} <= line.keys(), line
    events = {line["event"] for line in lines}
    assert {"serve.started", "http.request", "shutdown.draining", "shutdown.drained"} <= events
    access = [line for line in lines if line["event"] == "http.request"]
    assert any(a["request_id"] == "trace-42" and a["status"] == 401 for a in access)
    issued = [a for a in access if a["route"] == "/v1/certificates" and a["status"] == 201]
    assert len(issued) == 1
    assert issued[0]["key_id"] not in (None, "admin-token")
    looked_up = [a for a in access if a["route"] == "/v1/certificates/{serial}"]
    assert looked_up[0]["path"] == f"/v1/certificates/{serial}"  # the serial, in the log
    assert token(ca) not in err  # the admin token: never in a log


def _serial(sock: ssl.SSLSocket) -> int:
    der = sock.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def _connect(base: str, ca: DevCA) -> ssl.SSLSocket:
    host, port = base.removeprefix("https://").rsplit(":", 1)
    raw = socket.create_connection((host, int(port)), timeout=10)
    return tls(ca).wrap_socket(raw, server_hostname=host)


def _get(sock: ssl.SSLSocket, path: str) -> bytes:
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
        chunk = sock.recv(65536)
        assert chunk, data
        data += chunk
    return data


def test_sighup_takes_a_renewed_tls_certificate_while_serving(service: Service) -> None:
    base, ca, proc = service
    kept = _connect(base, ca)
    old = _serial(kept)
    assert _get(kept, "/healthz").startswith(b"HTTP/1.1 200")
    renewed = hanko("tls", "renew-server", "-c", str(ca.config_path))
    assert renewed.returncode == 0, renewed.stderr
    proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while True:
        fresh = _connect(base, ca)
        new = _serial(fresh)
        if new != old or time.monotonic() > deadline:
            break
        fresh.close()
        time.sleep(0.2)
    assert new != old, "the renewed certificate was not taken"
    assert _get(fresh, "/healthz").startswith(b"HTTP/1.1 200")
    # The connection opened before the reload goes on with its certificate.
    assert _get(kept, "/healthz").startswith(b"HTTP/1.1 200")
    assert proc.poll() is None
    # A configuration that does not load changes nothing and stops nothing.
    ca.config_path.write_text(ca.config_path.read_text() + "\nnot toml [\n")
    proc.send_signal(signal.SIGHUP)
    time.sleep(1)
    assert proc.poll() is None
    assert _get(fresh, "/healthz").startswith(b"HTTP/1.1 200")


# pkilint on every certificate: the batch takes seconds, so the signal surely comes
# while it is under way.
SLOW_BATCH = {"append": '\n[issuance]\nlint = "all"\n'}


@pytest.mark.parametrize("service", [SLOW_BATCH], indirect=True)
def test_sigterm_answers_a_batch_under_way_then_exits_0(service: Service) -> None:
    base, ca, proc = service
    admin = client(base, ca, "admin")
    paying_org(admin, "acme")
    rpc = client(base, ca, "rpc", "acme")
    rpc.timeout = httpx.Timeout(120)
    body = {
        "requests": [
            {"csr": csr(f"h{i}.example.co.jp"), "profile": "ov", "organization": "acme"}
            for i in range(500)
        ]
    }
    answer: list[httpx.Response] = []
    answered_at: list[float] = []

    def send() -> None:
        answer.append(rpc.post("/v1/certificates:batch", json=body))
        answered_at.append(time.monotonic())

    sender = threading.Thread(target=send)
    sender.start()
    # Signal while the batch is being worked on (linting 500 certificates takes
    # seconds): its request is in, its answer not out.
    time.sleep(1.0)
    assert not answer, "the batch was answered before the signal: make it slower"
    proc.send_signal(signal.SIGTERM)
    signalled_at = time.monotonic()
    sender.join(timeout=120)
    proc.communicate(timeout=60)
    err = serve_log(ca).read_text()
    assert proc.returncode == 0, err
    draining = re.search(r"draining (\d+) connections", err)
    assert draining is not None, err
    assert int(draining.group(1)) >= 1  # the batch's connection at least
    assert answer, "the batch got no answer"
    assert answer[0].status_code == 200, answer[0].text
    assert answered_at[0] > signalled_at  # it was under way when the signal came
    results = answer[0].json()["results"]
    assert len(results) == 500
    serials = [r["result"]["serial"] for r in results]
    assert all(r["error"] is None for r in results)
    store = LmdbStore(ca.directory / "lmdb", readonly=True)
    try:
        with store.read() as txn:
            for serial in serials:
                assert txn.get_cert(serial_from_hex(serial)) is not None, serial
    finally:
        store.close()
