"""The API's HTTP/1.1 connection (core/api/http1.py) without sockets: bytes in, events
out, answers checked on their way back."""

from __future__ import annotations

import pytest

from core.api.http1 import (
    NEED_DATA,
    PAUSED,
    Body,
    Connection,
    End,
    Event,
    Limits,
    Phase,
    ResponseError,
)
from core.api.http1_head import Head, Refusal

LIMITS = Limits(max_header=1024, header_timeout=10, body_timeout=30)
GET = b"GET /healthz HTTP/1.1\r\nHost: ca.example\r\n\r\n"


def events(conn: Connection, data: bytes = b"", *, limit: int = 64 << 10) -> list[Event]:
    """Everything the connection says after `data`, admitting each head with `limit`."""
    if data:
        conn.receive(data, 0.0)
    out: list[Event] = []
    while True:
        event = conn.next_event(0.0)
        out.append(event)
        if isinstance(event, Head):
            refused = conn.admit(limit)
            if refused is not None:
                out.append(refused)
                return out
            continue
        if event in (NEED_DATA, PAUSED) or isinstance(event, (End, Refusal)):
            return out


def refusal(conn: Connection, data: bytes, **kw: int) -> Refusal:
    last = events(conn, data, **kw)[-1]
    assert isinstance(last, Refusal), last
    return last


def answer(conn: Connection, status: int = 200, body: bytes = b"{}") -> bytes:
    wire = conn.response(status, [(b"content-type", b"application/json")], body, now=0)
    conn.answered(0.0)
    return wire


def test_a_get_is_a_head_and_an_end() -> None:
    conn = Connection(LIMITS, 0.0)
    got = events(conn, GET)
    head = got[0]
    assert isinstance(head, Head)
    assert (head.method, head.path, head.host, head.version) == (
        "GET",
        "/healthz",
        "ca.example",
        "1.1",
    )
    assert isinstance(got[1], End)
    assert conn.phase is Phase.RESPOND


def test_pipelined_requests_wait_for_each_answer_in_turn() -> None:
    conn = Connection(LIMITS, 0.0)
    got = events(conn, GET + GET.replace(b"/healthz", b"/readyz"))
    assert isinstance(got[-1], End)
    assert conn.next_event(0.0) is PAUSED  # nothing more is parsed before the answer
    wire = answer(conn)
    assert wire.startswith(b"HTTP/1.1 200 OK\r\n")
    got = events(conn)
    assert isinstance(got[0], Head)
    assert got[0].path == "/readyz"


def test_a_head_split_across_reads_completes() -> None:
    conn = Connection(LIMITS, 0.0)
    assert events(conn, GET[:10]) == [NEED_DATA]
    assert conn.phase is Phase.HEAD
    got = events(conn, GET[10:])
    assert isinstance(got[0], Head)


def test_a_head_over_the_limit_is_431_counted_as_fed() -> None:
    conn = Connection(LIMITS, 0.0)
    # No blank line yet: the bytes fed count, not completed headers.
    assert events(conn, b"GET / HTTP/1.1\r\nX-A: " + b"a" * 900) == [NEED_DATA]
    assert refusal(conn, b"a" * 200).status == 431


def test_a_complete_head_over_the_limit_is_431() -> None:
    conn = Connection(LIMITS, 0.0)
    big = b"GET / HTTP/1.1\r\nHost: a\r\nX-A: " + b"a" * 1100 + b"\r\n\r\n"
    assert refusal(conn, big).code == "head_too_large"


def test_content_length_over_the_route_limit_is_413_before_any_body() -> None:
    conn = Connection(LIMITS, 0.0)
    head = b"POST /acme/new-order HTTP/1.1\r\nHost: a\r\nContent-Length: 4194304\r\n\r\n"
    conn.receive(head, 0.0)
    event = conn.next_event(0.0)
    assert isinstance(event, Head)
    refused = conn.admit(65536)
    assert refused is not None
    assert (refused.status, refused.code) == (413, "body_too_large")
    assert conn.phase is Phase.CLOSED


def test_a_body_within_the_limit_is_delivered() -> None:
    conn = Connection(LIMITS, 0.0)
    got = events(conn, b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhel")
    assert isinstance(got[0], Head)
    assert got[1:] == [Body(b"hel"), NEED_DATA]
    assert events(conn, b"lo") == [Body(b"lo"), End()]


def test_chunked_bodies_are_counted_as_they_arrive() -> None:
    conn = Connection(LIMITS, 0.0)
    head = b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    got = events(conn, head + b"4\r\nabcd\r\n", limit=10)
    assert got[1:] == [Body(b"abcd"), NEED_DATA]
    assert refusal(conn, b"7\r\n", limit=10).status == 413  # 11 > 10, before its data


def test_a_chunked_body_ends_with_its_last_chunk() -> None:
    conn = Connection(LIMITS, 0.0)
    body = b"3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    got = events(conn, b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
    assert [e for e in got if isinstance(e, Body)] == [Body(b"abc"), Body(b"de")]
    assert isinstance(got[-1], End)


def test_a_trailer_field_is_refused_never_merged() -> None:
    conn = Connection(LIMITS, 0.0)
    data = (
        b"GET /v1/statistics HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"0\r\nAuthorization: Bearer admin-secret\r\n\r\n"
    )
    got = events(conn, data)
    head = got[0]
    assert isinstance(head, Head)
    assert head.header(b"authorization") is None
    assert isinstance(got[-1], Refusal)
    assert (got[-1].status, got[-1].code) == (400, "trailer_refused")


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        (b"GET / HTTP/1.1\r\n\r\n", 400, "host_required"),
        (b"GET / HTTP/1.1\r\nHost:\r\n\r\n", 400, "host_invalid"),
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "host_required"),
        (b"GET / HTTP/1.1\r\nHost: evil.example/x?\r\n\r\n", 400, "host_invalid"),
        (b"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", 400, "host_required"),
        (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505, "http_version"),
        (
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n",
            400,
            "ambiguous_framing",
        ),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\nConnection: upgrade\r\n\r\n",
            400,
            "upgrade_refused",
        ),
        (b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n", 417, "expectation_failed"),
        (b"GET / HTTP/1.1\r\nHost: a\x00b\r\n\r\n", 400, "malformed_request"),
        (b"GET / HTTP/1.1\nHost: a\n\n\r\n\r\n", 400, "malformed_request"),
    ],
)
def test_bad_heads_are_refused(data: bytes, status: int, code: str) -> None:
    got = refusal(Connection(LIMITS, 0.0), data)
    assert (got.status, got.code) == (status, code)


def test_http_1_0_needs_no_host_and_closes_after_its_answer() -> None:
    conn = Connection(LIMITS, 0.0)
    got = events(conn, b"GET /healthz HTTP/1.0\r\n\r\n")
    assert isinstance(got[0], Head)
    assert got[0].host == ""
    wire = conn.response(200, [], b"ok", now=0)
    assert b"connection: close\r\n" in wire
    assert conn.answered(0.0) is False


def test_expect_100_continue_is_matched_without_regard_to_case() -> None:
    conn = Connection(LIMITS, 0.0)
    head = b"POST /x HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n"
    got = events(conn, head)
    assert isinstance(got[0], Head)
    assert got[0].expect_continue
    assert not conn.body_started  # the edge owes a 100 Continue now


def test_head_answers_carry_the_length_but_no_body() -> None:
    conn = Connection(LIMITS, 0.0)
    events(conn, b"HEAD /acme/new-nonce HTTP/1.1\r\nHost: a\r\n\r\n")
    wire = conn.response(200, [(b"content-length", b"7")], b"", now=0)
    assert wire.endswith(b"\r\n\r\n")
    assert b"content-length: 7\r\n" in wire


@pytest.mark.parametrize(
    "headers",
    [
        [(b"x-evil", b"a\r\nSet-Cookie: b")],
        [(b"bad name", b"v")],
        [(b"content-length", b"99")],
        [(b"transfer-encoding", b"chunked")],
    ],
)
def test_bad_answers_are_refused_before_a_byte_goes_out(headers: list[tuple[bytes, bytes]]) -> None:
    conn = Connection(LIMITS, 0.0)
    events(conn, GET)
    with pytest.raises(ResponseError):
        conn.response(200, headers, b"{}", now=0)


def test_a_refused_head_with_a_body_closes_the_connection() -> None:
    conn = Connection(LIMITS, 0.0)
    conn.receive(b"POST /nope HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n", 0.0)
    assert isinstance(conn.next_event(0.0), Head)
    conn.refuse()
    wire = conn.response(404, [], b"{}", now=0)
    assert b"connection: close" in wire
    assert conn.answered(0.0) is False


def test_a_refused_head_without_a_body_keeps_the_connection() -> None:
    conn = Connection(LIMITS, 0.0)
    conn.receive(GET, 0.0)
    assert isinstance(conn.next_event(0.0), Head)
    conn.refuse()
    conn.response(401, [], b"{}", now=0)
    assert conn.answered(0.0) is True


def test_deadlines_move_with_the_phase_and_expiry_says_408_only_mid_request() -> None:
    conn = Connection(LIMITS, 5.0)
    assert conn.deadline == 15.0  # idle
    assert Connection(LIMITS, 0.0).expired() is None  # an idle connection closes quietly
    conn.receive(b"POST /x HTTP/1.1\r\n", 6.0)
    conn.next_event(6.0)
    assert conn.deadline == 16.0  # the head, from its first byte
    got = events(conn, b"Host: a\r\nContent-Length: 3\r\n\r\n")
    assert isinstance(got[0], Head)
    expired = conn.expired()
    assert expired is not None
    assert (expired.status, expired.code) == (408, "body_timeout")


def test_connection_close_is_kept_from_a_head_without_a_body() -> None:
    # llhttp resets keep-alive once a message completes: it is read as the head ends.
    conn = Connection(LIMITS, 0.0)
    got = events(conn, b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert isinstance(got[0], Head)
    assert got[0].keep_alive is False
    assert b"connection: close" in conn.response(200, [], b"", now=0)
    assert conn.answered(0.0) is False


def test_empty_lines_before_a_request_are_ignored() -> None:
    got = events(Connection(LIMITS, 0.0), b"\r\n\r\n" + GET)
    assert isinstance(got[0], Head)
