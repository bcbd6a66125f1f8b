"""The API port's rules against one real `hanko serve` over TLS: trailers never carry
credentials, Host is required once and never reflected, a CR/LF in a path stays inside
one log line, ACME refusals of the HTTP layer are problem documents, another tenant's
serial or licence answers like a made-up one, /readyz follows the signer's answers,
and check-config refuses an open /metrics."""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import (
    DevCA,
    Service,
    anonymous,
    client,
    csr,
    hanko,
    init_ca,
    keyed,
    new_key,
    paying_org,
    serve_log,
    serving,
    tls,
    token,
)


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    ca = init_ca(tmp_path_factory.mktemp("edge") / "ca")
    with serving(ca) as running:
        yield running


def raw(base: str, ca: DevCA, request: bytes, *, read: float = 5.0) -> bytes:
    """Send bytes over a fresh TLS connection; what came back until close or `read`."""
    host, port = base.removeprefix("https://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=read)
    with tls(ca).wrap_socket(sock, server_hostname="localhost") as s:
        s.sendall(request)
        data = b""
        try:
            while chunk := s.recv(65536):
                data += chunk
        except (TimeoutError, ssl.SSLError, ConnectionResetError):
            pass
    return data


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def body_of(answer: bytes) -> Any:
    return json.loads(answer.partition(b"\r\n\r\n")[2])


def test_a_trailer_never_carries_credentials(edge: Service) -> None:
    base, ca, _ = edge
    answer = raw(
        base,
        ca,
        b"GET /v1/statistics HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n"
        b"Connection: close\r\n\r\n0\r\nAuthorization: Bearer " + token(ca).encode() + b"\r\n\r\n",
    )
    assert status_of(answer) != 200
    # Refused from the head already (no credentials there), or for the trailer itself.
    assert status_of(answer) in (400, 401), answer[:200]
    # The same token in the head is taken: it was the trailer that was refused.
    with anonymous(base, ca) as c:
        r = c.get("/v1/statistics", headers={"Authorization": f"Bearer {token(ca)}"})
    assert r.status_code == 200


@pytest.mark.parametrize(
    "host_lines",
    [b"", b"Host:\r\n", b"Host: a.example\r\nHost: b.example\r\n", b"Host: evil.example/x?\r\n"],
)
def test_host_is_required_once_and_well_formed(edge: Service, host_lines: bytes) -> None:
    base, ca, _ = edge
    answer = raw(base, ca, b"GET /acme/directory HTTP/1.1\r\n" + host_lines + b"\r\n")
    assert status_of(answer) == 400, answer[:200]
    assert b"evil" not in answer


def test_acme_urls_come_from_configuration_not_from_host(edge: Service) -> None:
    base, ca, _ = edge
    answer = raw(
        base, ca, b"GET /acme/directory HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n"
    )
    assert status_of(answer) == 200
    directory = body_of(answer)
    assert directory["newNonce"] == f"{base}/acme/new-nonce"
    assert b"evil" not in answer


def test_a_crlf_in_the_path_stays_inside_one_log_line(edge: Service) -> None:
    base, ca, _ = edge
    forged = "/nope%0d%0a2026-12-04 12:00:00,000 INFO hanko.access POST /v1/admin/keys 201"
    with anonymous(base, ca) as c:
        assert c.get(forged).status_code == 404
    time.sleep(0.2)
    lines = serve_log(ca).read_text().splitlines()
    mine = [line for line in lines if "/nope" in line]
    assert len(mine) == 1, mine
    assert "\\r\\n2026-12-04" in mine[0]
    forged_line = "2026-12-04 12:00:00,000 INFO hanko.access POST"
    assert not any(line.startswith(forged_line) for line in lines)


def test_an_oversized_acme_request_is_a_problem_document_from_the_head(edge: Service) -> None:
    base, ca, _ = edge
    # Only the head: the answer comes before any body byte was sent.
    answer = raw(
        base,
        ca,
        b"POST /acme/new-order HTTP/1.1\r\nHost: localhost\r\n"
        b"Content-Type: application/jose+json\r\nContent-Length: 4194304\r\n\r\n",
        read=3.0,
    )
    assert status_of(answer) == 413, answer[:300]
    head = answer.partition(b"\r\n\r\n")[0].lower()
    assert b"content-type: application/problem+json" in head
    assert b"replay-nonce:" in head
    problem = body_of(answer)
    assert problem["type"] == "urn:ietf:params:acme:error:malformed"
    assert problem["status"] == 413


def test_a_chunked_acme_body_over_the_limit_is_413_too(edge: Service) -> None:
    base, ca, _ = edge
    chunk = b"x" * 40000
    body = b"".join(b"%x\r\n" % len(chunk) + chunk + b"\r\n" for _ in range(2))
    answer = raw(
        base,
        ca,
        b"POST /acme/new-account HTTP/1.1\r\nHost: localhost\r\n"
        b"Content-Type: application/jose+json\r\nTransfer-Encoding: chunked\r\n\r\n" + body,
    )
    assert status_of(answer) == 413
    assert body_of(answer)["type"] == "urn:ietf:params:acme:error:malformed"


def test_an_unknown_acme_path_is_a_problem_document(edge: Service) -> None:
    base, ca, _ = edge
    with anonymous(base, ca) as c:
        r = c.post("/acme/nothing-here", content=b"{}")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"] == "urn:ietf:params:acme:error:malformed"


def test_expect_100_continue_waits_for_admission(edge: Service) -> None:
    base, ca, _ = edge
    # Refused from the head: no 100 Continue, the refusal itself.
    answer = raw(
        base,
        ca,
        b"POST /v1/certificates HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\n"
        b"Content-Length: 10\r\n\r\n",
        read=2.0,
    )
    assert answer.startswith(b"HTTP/1.1 401"), answer[:100]
    # Admitted: 100 Continue, then (the body sent) the answer.
    host, port = base.removeprefix("https://").split(":")
    with tls(ca).wrap_socket(
        socket.create_connection((host, int(port)), timeout=5), server_hostname="localhost"
    ) as s:
        s.sendall(
            b"POST /v1/admin/accounts HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer "
            + token(ca).encode()
            + b"\r\nContent-Type: application/json\r\nExpect: 100-Continue\r\n"
            b"Content-Length: 2\r\nConnection: close\r\n\r\n"
        )
        assert s.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        s.sendall(b"{}")
        assert s.recv(100).startswith(b"HTTP/1.1 422")


def test_another_tenants_serial_or_licence_answers_like_a_made_up_one(edge: Service) -> None:
    base, ca, _ = edge
    admin = client(base, ca, "admin")
    paying_org(admin, "tenant-a", domain="a.example.co.jp")
    paying_org(admin, "tenant-b", domain="b.example.co.jp")
    a = keyed(base, ca, new_key(base, ca, "issuer", "tenant-a")["secret"])
    b = keyed(base, ca, new_key(base, ca, "issuer", "tenant-b")["secret"])
    r = b.post("/v1/certificates", json={"csr": csr("www.b.example.co.jp"), "profile": "ov",
                                         "organization": "tenant-b"})  # fmt: skip
    assert r.status_code == 201, r.text
    theirs = r.json()["serial"]
    made_up = "7" * len(theirs)

    def ask(**extra: str) -> httpx.Response:
        return a.post("/v1/certificates", json={"csr": csr("www.a.example.co.jp"), "profile": "ov",
                                                "organization": "tenant-a", **extra})  # fmt: skip

    for field in ("renewal_of", "reissue_of"):
        real, fake = ask(**{field: theirs}), ask(**{field: made_up})
        assert real.status_code == fake.status_code
        assert real.json()["error"] == fake.json()["error"] == f"{field}_unknown"
        assert real.json()["detail"].replace(theirs, made_up) == fake.json()["detail"]
    real, fake = ask(license="tenant-b-pool"), ask(license="no-such-pool")
    assert real.status_code == fake.status_code == 422
    assert real.json()["error"] == fake.json()["error"] == "license_unknown"
    assert real.json()["detail"].replace("tenant-b-pool", "X") == fake.json()["detail"].replace(
        "no-such-pool", "X"
    )
    # Reading or revoking it: 404 both, the same words.
    real, fake = a.get(f"/v1/certificates/{theirs}"), a.get(f"/v1/certificates/{made_up}")
    assert real.status_code == fake.status_code == 404
    assert real.json()["error"] == fake.json()["error"]


def signer_workers(serve_pid: int) -> list[int]:
    """The signer worker processes of a `hanko serve`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])
        if ppid == serve_pid and b"signer" in cmdline:
            found.append(int(entry.name))
    return found


def test_readyz_is_503_while_the_signer_does_not_answer(edge: Service) -> None:
    base, ca, proc = edge
    workers = signer_workers(proc.pid)
    assert workers, "no signer worker found"
    with anonymous(base, ca) as c:
        assert c.get("/readyz").status_code == 200
        for pid in workers:
            os.kill(pid, signal.SIGSTOP)
        try:
            time.sleep(1.2)  # past the remembered success
            started = time.monotonic()
            r = c.get("/readyz")
            assert r.status_code == 503, r.text
            assert r.json()["checks"]["signer"] is False
            assert r.json()["checks"]["store_writable"] is True
            assert time.monotonic() - started < 5
        finally:
            for pid in workers:
                os.kill(pid, signal.SIGCONT)
        deadline = time.monotonic() + 30
        while c.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, "not ready again after SIGCONT"
            time.sleep(0.3)


def test_check_config_refuses_a_routable_metrics_listener_without_auth(fresh_ca: DevCA) -> None:
    text = fresh_ca.config_path.read_text()
    open_metrics = text.replace('listen = "127.0.0.1:9464"', 'listen = "0.0.0.0:9464"', 1)
    assert open_metrics != text
    fresh_ca.config_path.write_text(open_metrics)
    out = hanko("check-config", "-c", str(fresh_ca.config_path))
    assert out.returncode != 0
    assert "metrics.listen: 0.0.0.0:9464 is not a loopback address" in out.stderr
    assert "Traceback" not in out.stderr


SSLYZE = Path(sys.executable).parent.parent / "tools" / "sslyze" / "bin" / "sslyze"


def test_the_api_listener_meets_mozillas_intermediate_profile(edge: Service) -> None:
    """SSLyze's check against Mozilla's "intermediate" configuration: protocols, cipher
    suites, key exchange groups (X25519, P-256, P-384 only), the certificate's lifetime
    (366 days at most) and its path to the trusted CA."""
    base, ca, _ = edge
    if not SSLYZE.exists():
        pytest.fail(f"{SSLYZE} is missing: run scripts/dev.sh setup (the test command does)")
    target = base.removeprefix("https://")
    out = subprocess.run(
        [str(SSLYZE), "--mozilla_config=intermediate", "--certinfo_ca_file",
         str(ca.directory / "tls" / "internal-ca.pem"), target],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert f"{target}: OK - Compliant." in out.stdout
    assert "Supported curves:                  X25519, secp256r1, secp384r1" in out.stdout
