"""One slow client cannot starve the responder: 2,000 connections trickling a byte a
second into responders whose open-file limit is 1,024, while ordinary OCSP requests
keep being answered within 100 ms and every slow connection is closed by the head
deadline (or shed earlier to make room)."""

from __future__ import annotations

import base64
import itertools
import resource
import socket
import subprocess
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509 import ocsp

from tests.conftest import BIN, DevCA, client, free_port, free_ports, paying_org, serve_log
from tests.ocsp.test_answers import issue, request_der

SLOW = 2_000
NOFILE = 1_024
REQUEST_TIMEOUT = 3.0  # the head deadline in the responder's config
SWEEP = 1.0  # the responder looks at deadlines once a second
ORDINARY_EVERY = 0.02


def _limit_open_files() -> None:  # in the child, before exec: soft = hard = 1,024
    resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))


@pytest.fixture
def limited(fresh_ca: DevCA) -> Iterator[tuple[str, str, DevCA]]:
    api, status = free_ports(2)
    text = fresh_ca.config_path.read_text().replace("127.0.0.1:8443", f"127.0.0.1:{api}")
    text = text.replace("127.0.0.1:8080", f"127.0.0.1:{status}")
    text = text.replace("127.0.0.1:9464", f"127.0.0.1:{free_port()}")
    text += f'request_timeout = "{REQUEST_TIMEOUT:g}s"\nidle_timeout = "30s"\n'
    fresh_ca.config_path.write_text(text)
    with serve_log(fresh_ca).open("w") as log:  # a pipe nobody reads could fill and block
        proc = subprocess.Popen(
            [str(BIN / "hanko"), "serve", "-c", str(fresh_ca.config_path)],
            stdout=subprocess.PIPE, stderr=log, text=True,
            preexec_fn=_limit_open_files,  # noqa: PLW1509 - only setrlimit, before exec
        )  # fmt: skip
    try:
        assert proc.stdout is not None
        assert "OCSP and CRLs on" in proc.stdout.readline()
        yield f"https://127.0.0.1:{api}", f"127.0.0.1:{status}", fresh_ca
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _ordinary(addr: tuple[str, int], request: bytes) -> float | None:
    """Seconds to a whole OCSP answer on a new connection from another address than the
    slow clients'; None if it failed."""
    started = time.monotonic()
    try:
        with socket.create_connection(addr, timeout=5, source_address=("127.0.0.2", 0)) as sock:
            sock.sendall(request)
            reply = b""
            while chunk := sock.recv(65536):
                reply += chunk
    except OSError:
        return None
    head, _, body = reply.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200 "):
        return None
    if ocsp.load_der_ocsp_response(body).certificate_status is not ocsp.OCSPCertStatus.GOOD:
        return None
    return time.monotonic() - started


@pytest.mark.slow
def test_2000_slow_clients_do_not_starve_ordinary_requests(
    limited: tuple[str, str, DevCA],
) -> None:
    base, status, ca = limited
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4 * SLOW)), hard))
    admin = client(base, ca, "admin")
    paying_org(admin, "acme")
    cert = issue(client(base, ca, "rpc"))
    issuer = x509.load_pem_x509_certificate((ca.directory / "ca" / "issuing.pem").read_bytes())
    target = base64.b64encode(request_der(cert, issuer, hashes.SHA1())).decode()
    request = f"GET /ocsp/{target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
    host, port = status.rsplit(":", 1)
    addr = (host, int(port))
    assert _ordinary(addr, request) is not None

    # The slow clients: each sends the start of a request, then a byte a second.
    slow: list[tuple[socket.socket, float]] = []
    for _ in range(SLOW):
        sock = socket.create_connection(addr, timeout=5)
        sock.sendall(b"GET /ocsp/")
        sock.setblocking(False)
        slow.append((sock, time.monotonic()))
    closed_at: dict[int, float] = {}
    stop = threading.Event()

    # How long the trickler takes to look at every socket again: a close is seen up to
    # that late (its pass over 2,000 sockets plus its second's wait).
    passes: list[float] = []

    def trickle() -> None:
        while not stop.is_set() and len(closed_at) < SLOW:
            passes.append(time.monotonic())
            for i, (sock, _) in enumerate(slow):
                if i in closed_at:
                    continue
                try:
                    if sock.recv(65536) == b"":  # closed (after a 408, or shed)
                        closed_at[i] = time.monotonic()
                        continue
                except BlockingIOError:
                    pass
                except OSError:
                    closed_at[i] = time.monotonic()
                    continue
                try:
                    sock.send(b"A")
                except BlockingIOError:
                    pass
                except OSError:
                    closed_at[i] = time.monotonic()
            stop.wait(1.0)

    trickler = threading.Thread(target=trickle, name="slowloris")
    trickler.start()
    latencies: list[float | None] = []
    try:
        until = time.monotonic() + REQUEST_TIMEOUT + 2 * SWEEP + 2
        while time.monotonic() < until:
            latencies.append(_ordinary(addr, request))
            time.sleep(ORDINARY_EVERY)
        while len(closed_at) < SLOW and time.monotonic() < until + 5:
            time.sleep(0.2)
    finally:
        stop.set()
        trickler.join(timeout=30)
        for sock, _ in slow:
            sock.close()

    fast = sum(1 for t in latencies if t is not None and t <= 0.1)
    assert len(latencies) >= 200
    assert fast >= 0.99 * len(latencies), sorted(t or 99.0 for t in latencies)[-20:]
    # Every slow connection was closed by the server, none later than its head deadline
    # (plus the sweep's second, and however long the trickler took between two looks).
    assert len(closed_at) == SLOW
    seen_within = max((b - a for a, b in itertools.pairwise(passes)), default=1.0)
    assert seen_within < 2.5, "the trickler was too slow to tell a late close from a timely one"
    late = [
        closed_at[i] - opened
        for i, (_, opened) in enumerate(slow)
        if closed_at[i] - opened > REQUEST_TIMEOUT + 2 * SWEEP + seen_within
    ]
    assert late == []
    r = httpx.get(f"http://{status}/ocsp/{target}", timeout=5)
    assert r.status_code == 200
