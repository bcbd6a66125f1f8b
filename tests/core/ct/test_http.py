"""The CT submission client against a real HTTP server on loopback (the tests' log):
connections are kept alive and reused, one the server closed meanwhile is replaced
without the caller seeing it, and what is not an answer is an HttpError."""

from __future__ import annotations

import socket
import threading

import pytest
import trio

from core.ct.http import MAX_ANSWER, HttpError, Origin
from core.dns.outbound import Outbound
from core.dns.resolver import DnsSettings, Resolver
from tests.conftest import free_port
from tests.ct_log import TestLog

PATH = "/ct/v1/add-chain"


def lab() -> Outbound:
    """The tests' logs are on loopback: the lab switch lets them through."""
    return Outbound(Resolver(DnsSettings()), allow_private=True)


def test_connections_are_kept_alive_and_replaced_when_closed() -> None:
    log = TestLog("a")
    try:

        async def main() -> None:
            origin = Origin(log.url, limit=4, outbound=lab())
            for _ in range(5):
                answer = await origin.post(PATH, b'{"chain": []}')
                assert answer.status == 400  # a bad chain: the log said so, in JSON
                assert b"bad chain" in answer.body or b"needs" in answer.body
            assert log.connections == 1
            log.drop_connections()  # the server's idle timeout
            assert (await origin.post(PATH, b'{"chain": []}')).status == 400
            assert log.connections == 2
            async with trio.open_nursery() as nursery:  # at most `limit` at once
                for _ in range(12):
                    nursery.start_soon(origin.post, PATH, b'{"chain": []}')
            assert log.connections <= 2 + 4
            await origin.aclose()

        trio.run(main)
    finally:
        log.close()


def serve_once(reply: bytes) -> tuple[int, threading.Thread]:
    """A raw server answering one request with `reply`, then closing."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    port = sock.getsockname()[1]

    def run() -> None:
        conn, _ = sock.accept()
        conn.recv(65536)
        conn.sendall(reply)
        conn.close()
        sock.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return port, thread


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{", "in the middle of its answer"),
        (b"", "without answering"),
        (b"SMTP ready\r\n\r\n", "not HTTP/1.1"),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (MAX_ANSWER + 1)
            + b"x" * (MAX_ANSWER + 1),
            "larger than",
        ),
    ],
)
def test_what_is_not_an_answer_is_an_http_error(reply: bytes, message: str) -> None:
    port, thread = serve_once(reply)

    async def main() -> None:
        with pytest.raises(HttpError, match=message):
            await Origin(f"http://127.0.0.1:{port}", outbound=lab()).post(PATH, b"{}")

    trio.run(main)
    thread.join(5)


def test_an_answer_with_connection_close_is_not_reused() -> None:
    reply = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}"
    port, thread = serve_once(reply)

    async def main() -> None:
        origin = Origin(f"http://127.0.0.1:{port}", outbound=lab())
        answer = await origin.post(PATH, b"{}")
        assert (answer.status, answer.body) == (200, b"{}")
        assert origin.idle() is None

    trio.run(main)
    thread.join(5)


def test_nobody_listening_is_an_http_error() -> None:
    async def main() -> None:
        with pytest.raises(HttpError, match="cannot reach the log"):
            await Origin(f"http://127.0.0.1:{free_port()}", outbound=lab()).post(PATH, b"{}")

    trio.run(main)


def test_only_http_urls() -> None:
    with pytest.raises(ValueError, match="not an http"):
        Origin("ftp://log.example", outbound=lab())
