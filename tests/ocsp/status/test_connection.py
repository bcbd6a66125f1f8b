"""The responder's connection without sockets: bytes and times in, requests, errors and
deadlines out."""

from __future__ import annotations

import pytest

from ocsp.status.connection import Connection, Limits, State

LIMITS = Limits(max_header=256, max_body=64, idle_timeout=30.0, request_timeout=10.0)
GET = b"GET /ocsp/MEMw HTTP/1.1\r\nHost: x\r\n\r\n"


def test_a_request_split_anywhere_comes_out_whole() -> None:
    data = b'POST /ocsp HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nIf-None-Match: "e"\r\n\r\nhello'
    for cut in range(1, len(data)):
        conn = Connection(LIMITS, 0.0)
        first, err = conn.receive(data[:cut], 1.0)
        assert (first, err, conn.state) == ([], None, State.REQUEST)
        [req], err = conn.receive(data[cut:], 2.0)
        assert err is None
        assert (req.method, req.target, req.body, req.keep_alive) == (
            b"POST",
            b"/ocsp",
            b"hello",
            True,
        )
        assert req.if_none_match == b'"e"'
        assert conn.state is State.IDLE
        assert conn.deadline == 2.0 + LIMITS.idle_timeout


def test_the_request_deadline_runs_from_its_first_byte_and_no_trickle_moves_it() -> None:
    conn = Connection(LIMITS, 0.0)
    assert conn.deadline == LIMITS.idle_timeout
    conn.receive(GET[:1], 5.0)
    for i, byte in enumerate(GET[1:-1]):  # one byte a second
        conn.receive(bytes([byte]), 6.0 + i)
    assert conn.deadline == 5.0 + LIMITS.request_timeout
    err = conn.expired()
    assert err is not None
    assert err.status == 408


def test_an_idle_connection_expires_without_a_word() -> None:
    conn = Connection(LIMITS, 0.0)
    conn.receive(GET, 1.0)
    assert conn.state is State.IDLE
    assert conn.expired() is None


def test_pipelined_requests_in_order_and_nothing_after_connection_close() -> None:
    close = GET.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n")
    conn = Connection(LIMITS, 0.0)
    reqs, err = conn.receive(GET + GET + close + GET, 1.0)
    assert err is None
    assert [r.keep_alive for r in reqs] == [True, True, False]
    assert conn.state is State.CLOSED
    assert conn.receive(GET, 2.0) == ([], None)


def test_http_1_0_closes_after_its_request() -> None:
    conn = Connection(LIMITS, 0.0)
    [req], _ = conn.receive(b"GET /x HTTP/1.0\r\n\r\n", 1.0)
    assert not req.keep_alive
    assert conn.state is State.CLOSED


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"POST /ocsp HTTP/1.1\r\nContent-Length: 65\r\n\r\n", 413),
        (b"POST /ocsp HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 411),
        # Both framings at once (request smuggling): llhttp refuses it outright.
        (b"POST /ocsp HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        (b"POST /ocsp HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabc", 400),
        (b"POST /ocsp HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
        (b"GET /" + b"A" * 300 + b" HTTP/1.1\r\n\r\n", 431),
        (b"GET / HTTP/1.1\r\nX: " + b"v" * 300 + b"\r\n\r\n", 431),
        (b"GET / HTTP/2.0\r\n\r\n", 505),
        (b"BREW /ocsp HTTP/1.1\r\n\r\n", 405),
        (b"nonsense\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n", 400),
    ],
)
def test_refusals_close_the_connection(data: bytes, status: int) -> None:
    conn = Connection(LIMITS, 0.0)
    _, err = conn.receive(data, 1.0)
    assert err is not None
    assert err.status == status
    assert conn.state is State.CLOSED


def test_a_header_that_never_ends_is_cut_at_the_head_limit() -> None:
    conn = Connection(LIMITS, 0.0)
    conn.receive(b"GET / HTTP/1.1\r\nX-Slow: ", 1.0)
    err = None
    for _ in range(LIMITS.max_header):
        _, err = conn.receive(b"v", 2.0)
        if err is not None:
            break
    assert err is not None
    assert err.status == 431


@pytest.mark.parametrize(("bad", "status"), [(b"nonsense", 400), (b"BREW / HTTP/1.1", 405)])
def test_answers_before_an_error_are_kept(bad: bytes, status: int) -> None:
    conn = Connection(LIMITS, 0.0)
    reqs, err = conn.receive(GET + bad + b"\r\n\r\n", 1.0)
    assert len(reqs) == 1
    assert err is not None
    assert err.status == status
