"""The API listener against hostile clients, over real TLS sockets: a request head that
trickles in is cut at the header deadline, a body at the body deadline (408), both
framings at once are refused (400) and the connection closed, open connections stop at
the cap, and a key's rate answers 429 with Retry-After."""

from __future__ import annotations

import socket
import ssl
import time

import pytest

from tests.conftest import DevCA, Service, client, keyed, new_key, paying_org, tls, token

LIMITS = {
    "replace": [
        (
            'tls_key = "tls/api.key"\n',
            'tls_key = "tls/api.key"\nheader_timeout = "2s"\nbody_timeout = "2s"\n'
            "max_connections = 8\n",
        )
    ]
}


CAPPED = {
    "replace": [('tls_key = "tls/api.key"\n', 'tls_key = "tls/api.key"\nmax_connections = 8\n')]
}


def connect(base: str, ca: DevCA, timeout: float = 10) -> ssl.SSLSocket:
    host, port = base.removeprefix("https://").split(":")
    raw = socket.create_connection((host, int(port)), timeout=timeout)
    return tls(ca).wrap_socket(raw, server_hostname="localhost")


def read_all(sock: ssl.SSLSocket, limit: float) -> tuple[bytes, float]:
    """What the server sends until it closes, and when it closed (seconds from now)."""
    started = time.monotonic()
    sock.settimeout(limit)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (ssl.SSLError, ConnectionResetError, TimeoutError):
        pass
    return data, time.monotonic() - started


def trickle(sock: ssl.SSLSocket, data: bytes, *, every: float, until: float) -> float:
    """Send `data` a byte at a time; the seconds until the server stopped taking it."""
    started = time.monotonic()
    for byte in data:
        if time.monotonic() - started > until:
            break
        try:
            sock.sendall(bytes([byte]))
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            break
        time.sleep(every)
    return time.monotonic() - started


@pytest.mark.parametrize("service", [LIMITS], indirect=True)
def test_a_trickled_head_is_cut_at_the_header_deadline(service: Service) -> None:
    base, ca, _ = service
    started = time.monotonic()
    sock = connect(base, ca)
    sock.sendall(b"GET /v1/admin/accounts HTTP/1.1\r\nHost: localhost\r\n")
    # One byte of a header that never ends every 0.3 s: no byte moves the deadline,
    # which runs from the connection's start.
    trickle(sock, b"X-Slow: " + b"a" * 40, every=0.3, until=12)
    reply, _ = read_all(sock, limit=10)
    sock.close()
    assert time.monotonic() - started < 6, "the head deadline is 2 s"
    assert b"200 OK" not in reply


@pytest.mark.parametrize("service", [LIMITS], indirect=True)
def test_a_trickled_body_gets_408_at_the_body_deadline(service: Service) -> None:
    base, ca, _ = service
    admin = client(base, ca, "admin")
    sock = connect(base, ca)
    sock.sendall(
        b"POST /v1/admin/accounts HTTP/1.1\r\nHost: localhost\r\n"
        b"Authorization: Bearer " + token(ca).encode() + b"\r\n"
        b"Content-Type: application/json\r\nContent-Length: 200\r\n\r\n"
    )
    body = b'{"id": "slow", "name": "' + b"s" * 150
    started = time.monotonic()
    trickle(sock, body, every=0.5, until=4)
    reply, _ = read_all(sock, limit=10)
    sock.close()
    assert time.monotonic() - started < 6, "the body deadline is 2 s"
    assert reply.startswith(b"HTTP/1.1 408 "), reply[:200]
    assert b'"error":"body_timeout"' in reply
    assert admin.get("/v1/admin/accounts/slow").status_code == 404  # nothing recorded


@pytest.mark.parametrize("service", [LIMITS], indirect=True)
def test_content_length_with_transfer_encoding_is_refused(service: Service) -> None:
    base, ca, _ = service
    sock = connect(base, ca)
    body = b'{"id": "smuggled", "name": "x"}'
    sock.sendall(
        b"POST /v1/admin/accounts HTTP/1.1\r\nHost: localhost\r\n"
        b"Authorization: Bearer " + token(ca).encode() + b"\r\n"
        b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"%x\r\n" % len(body)
        + body
        + b"\r\n0\r\n\r\n"
    )
    reply, closed_after = read_all(sock, limit=10)
    sock.close()
    assert reply.startswith(b"HTTP/1.1 400 "), reply[:200]
    assert b'"error":"ambiguous_framing"' in reply
    assert b"connection: close" in reply.lower()
    assert closed_after < 5  # the server closed it: nothing more is read from it
    assert client(base, ca, "admin").get("/v1/admin/accounts/smuggled").status_code == 404


@pytest.mark.parametrize("service", [CAPPED], indirect=True)
def test_connections_past_the_cap_wait_for_a_free_slot(service: Service) -> None:
    """Past `max_connections` a client waits in the kernel's backlog; one that leaves
    makes room for it at once."""
    base, ca, _ = service
    held = [connect(base, ca) for _ in range(8)]  # handshakes done: 8 slots taken
    host, port = base.removeprefix("https://").split(":")
    raw = socket.create_connection((host, int(port)), timeout=0.7)
    waiting = tls(ca).wrap_socket(raw, server_hostname="localhost", do_handshake_on_connect=False)
    with pytest.raises((TimeoutError, ssl.SSLError, socket.timeout)):
        waiting.do_handshake()  # accepted by the kernel, not by the listener
    waiting.close()
    held.pop().close()
    started = time.monotonic()
    late = connect(base, ca, timeout=30)
    # A client that left frees its slot at once, not when its keep-alive timer fires.
    assert time.monotonic() - started < 3
    late.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    reply, _ = read_all(late, limit=5)
    assert reply.startswith(b"HTTP/1.1 200 ")
    for sock in held:
        sock.close()


def test_a_key_over_its_rate_gets_429_with_retry_after(service: Service) -> None:
    base, ca, _ = service
    paying_org(client(base, ca, "admin"), "acme")
    key = new_key(base, ca, "reader", "acme", rate=2)
    reader = keyed(base, ca, key["secret"])
    answers = [reader.get("/v1/accounts/acme") for _ in range(6)]
    statuses = [r.status_code for r in answers]
    assert statuses[:2] == [200, 200]
    limited = [r for r in answers if r.status_code == 429]
    assert limited, statuses
    assert limited[0].json()["error"] == "rate_limited"
    assert limited[0].headers["retry-after"] == "1"
    time.sleep(1.1)
    assert reader.get("/v1/accounts/acme").status_code == 200


def test_paths_are_percent_decoded(service: Service) -> None:
    base, ca, _ = service
    admin = client(base, ca, "admin")
    assert admin.post("/v1/admin/accounts", json={"id": "tohoku", "name": "T"}).status_code == 201
    path = "/v1/admin/accounts/tohoku/administrators"
    assert admin.post(path, json={"email": "sato@tohoku.co.jp"}).status_code == 201
    r = admin.delete(f"{path}/sato%40tohoku.co.jp")
    assert r.status_code == 200, r.text
    assert admin.get("/v1/admin/accounts/tohoku").json()["admins"] == []
