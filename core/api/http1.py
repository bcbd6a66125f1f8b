"""HTTP/1.1 for the API listener, on llhttp (httptools) and trio: one connection's
requests parsed, the application called through ASGI, answers written back.

hypercorn spent about 550 us of CPU on a request that does nothing over TLS (1,825/s on
/healthz on one core); the ACME flow makes five requests per certificate. This keeps
what the API needs (keep-alive, pipelining in order, chunked and Content-Length
bodies, Expect: 100-continue, HEAD, HTTP/1.0) and the deadlines that protect it: a
request head must be complete `header_timeout` after the connection opened or its last
answer, and a body `body_timeout` after its head; nothing a client trickles moves them.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import unquote

import httptools
import trio

from core.base.httpdate import http_date

Scope = dict[str, Any]
App = Callable[
    [
        Scope,
        Callable[[], Awaitable[Mapping[str, Any]]],
        Callable[[Mapping[str, Any]], Awaitable[None]],
    ],
    Awaitable[None],
]
MAX_RECV = 65536
_REASONS = {
    100: b"Continue", 200: b"OK", 201: b"Created", 204: b"No Content", 304: b"Not Modified",
    400: b"Bad Request", 401: b"Unauthorized", 403: b"Forbidden", 404: b"Not Found",
    405: b"Method Not Allowed", 408: b"Request Timeout", 409: b"Conflict",
    413: b"Content Too Large", 415: b"Unsupported Media Type", 422: b"Unprocessable Content",
    429: b"Too Many Requests", 431: b"Request Header Fields Too Large",
    500: b"Internal Server Error", 501: b"Not Implemented", 503: b"Service Unavailable",
    505: b"HTTP Version Not Supported",
}  # fmt: skip


class _Request:
    __slots__ = ("body", "complete", "headers", "keep_alive", "method", "url", "version")

    def __init__(self) -> None:
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.complete = False
        self.method = b""
        self.keep_alive = True
        self.version = "1.1"


class _Parser:
    """httptools callbacks into whole requests; `head_done` once per request head."""

    def __init__(self, max_header: int, max_body: int) -> None:
        self._parser = httptools.HttpRequestParser(self)
        self._max_header = max_header
        self._max_body = max_body
        self.current: _Request | None = None
        self.ready: list[_Request] = []
        self.head_done = False
        self._head = 0
        self._body = 0
        self.too_large = 0  # 413 or 431 once a limit is passed

    def feed(self, data: bytes) -> None:
        self._parser.feed_data(data)

    def on_message_begin(self) -> None:
        self.current = _Request()
        self.head_done = False
        self._head = self._body = 0

    def on_url(self, url: bytes) -> None:
        assert self.current is not None  # noqa: S101 - llhttp calls on_message_begin first
        self.current.url += url
        self._count_head(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        assert self.current is not None  # noqa: S101
        self.current.headers.append((name.lower(), value))
        self._count_head(len(name) + len(value) + 4)

    def _count_head(self, n: int) -> None:
        self._head += n
        if self._head > self._max_header:
            self.too_large = 431
            raise httptools.HttpParserError("head too large")

    def on_headers_complete(self) -> None:
        assert self.current is not None  # noqa: S101
        self.current.method = self._parser.get_method()
        self.current.keep_alive = self._parser.should_keep_alive()
        self.current.version = self._parser.get_http_version()
        self.head_done = True

    def on_body(self, body: bytes) -> None:
        assert self.current is not None  # noqa: S101
        self._body += len(body)
        if self._body > self._max_body:
            self.too_large = 413
            raise httptools.HttpParserError("body too large")
        self.current.body.append(body)

    def on_message_complete(self) -> None:
        assert self.current is not None  # noqa: S101
        self.current.complete = True
        self.ready.append(self.current)
        self.current = None
        self.head_done = False


_DATE: list[Any] = [0, b""]  # the second, and its Date line: formatted once a second


def _date_line() -> bytes:
    now = int(time.time())
    if now != _DATE[0]:
        _DATE[0], _DATE[1] = now, b"date: " + http_date(now) + b"\r\n"
    line: bytes = _DATE[1]
    return line


def _error(status: int, code: str, detail: str) -> bytes:
    """The router's JSON error shape, for what is refused before the router sees it."""
    body = b'{"error":"%s","detail":"%s"}' % (code.encode(), detail.encode())
    return b"".join((
        b"HTTP/1.1 %d %s\r\n" % (status, _REASONS.get(status, b"")),
        b"content-type: application/json\r\ncontent-length: %d\r\n" % len(body),
        b"connection: close\r\n\r\n", body,
    ))  # fmt: skip


class Http1Connection:
    """Serve one connection until the client leaves, breaks the protocol or runs out of
    time, or the application asks to close."""

    def __init__(
        self,
        stream: trio.abc.Stream,
        app: App,
        *,
        scheme: str,
        client: tuple[str, int] | None,
        server: tuple[str, int] | None,
        header_timeout: float,
        body_timeout: float,
        max_header: int = 16 << 10,
        max_body: int = 4 << 20,
        draining: Callable[[], bool] = lambda: False,
    ) -> None:
        self._stream = stream
        self._app = app
        self._scheme = scheme
        self._client = client
        self._server = server
        self._header_timeout = header_timeout
        self._body_timeout = body_timeout
        self._parser = _Parser(max_header, max_body + 1)
        self._eof = False
        self._draining = draining
        self._idle: trio.CancelScope | None = None  # while waiting for a next request

    def close_if_idle(self) -> None:
        """Draining: end the connection if it waits for a request none of which has
        arrived; one under way is answered, with `Connection: close`."""
        if self._idle is not None and self._parser.current is None:
            self._idle.cancel()

    async def _fill(self, deadline: float, until: Callable[[], bool]) -> bool:
        """Read until `until()` holds; False if the client left or time ran out."""
        parser = self._parser
        with trio.move_on_at(deadline):
            while not until():
                data = await self._stream.receive_some(MAX_RECV)
                if not data:
                    self._eof = True
                    return until()
                parser.feed(bytes(data))
            return True
        return False

    async def run(self) -> None:
        """Serve until done; a client that leaves or stops reading ends it quietly,
        also while it is being told why it is refused."""
        try:
            refusal = await self._serve()
            if refusal is not None:
                await self._send(refusal)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return

    async def _serve(self) -> bytes | None:
        """Requests answered in turn; the refusal to send last, if the protocol broke."""
        try:
            while True:
                got = await self._next()
                if not isinstance(got, _Request):
                    return got
                if not await self._answer(got):
                    return None
        except httptools.HttpParserUpgrade:
            return _error(400, "upgrade_refused", "protocol upgrades are not served")
        except httptools.HttpParserError as exc:
            return self._refusal(str(exc))

    async def _next(self) -> _Request | bytes | None:
        """The next whole request; else a refusal to send (a deadline passed with a
        request under way), or None (the client left, or was idle too long)."""
        parser = self._parser
        if parser.ready:  # pipelined behind the last one
            return parser.ready.pop(0)
        if self._draining() and parser.current is None:
            return None
        head_deadline = trio.current_time() + self._header_timeout
        head = False  # also when drain() ends the wait
        with trio.CancelScope() as self._idle:
            head = await self._fill(head_deadline, lambda: parser.head_done or bool(parser.ready))
        self._idle = None
        if not head:
            begun = parser.current is not None
            return (
                _error(408, "header_timeout", "the request head took too long") if begun else None
            )
        if not parser.ready:
            req = parser.current
            assert req is not None  # noqa: S101 - the head is done, the body is not
            if (b"expect", b"100-continue") in req.headers:
                await self._send(b"HTTP/1.1 100 Continue\r\n\r\n")
            body_deadline = trio.current_time() + self._body_timeout
            if not await self._fill(body_deadline, lambda: bool(parser.ready)):
                if self._eof:
                    return None
                return _error(408, "body_timeout", "the request body took too long")
        return parser.ready.pop(0)

    def _refusal(self, reason: str) -> bytes:
        parser = self._parser
        if parser.too_large == 413:
            return _error(413, "body_too_large", "the request body is too large")
        if parser.too_large == 431:
            return _error(431, "head_too_large", "the request head is too large")
        if "Transfer-Encoding" in reason and "Content-Length" in reason:
            # RFC 9112 6.3: the two framings may disagree (request smuggling).
            return _error(400, "ambiguous_framing", "Content-Length and Transfer-Encoding together")
        return _error(400, "malformed_request", "the request is not valid HTTP/1.1")

    async def _answer(self, req: _Request) -> bool:
        """Run the application for one request; whether the connection goes on."""
        if req.version not in ("1.1", "1.0"):
            await self._send(_error(505, "http_version", "only HTTP/1.0 and HTTP/1.1"))
            return False
        url = httptools.parse_url(req.url)
        body = b"".join(req.body)
        scope: Scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": req.version,
            "method": req.method.decode("ascii"),
            "scheme": self._scheme,
            # ASGI: the path percent-decoded (as hypercorn gave it), the raw one beside it.
            "path": unquote((url.path or b"/").decode("latin-1")),
            "raw_path": url.path or b"/",
            "query_string": url.query or b"",
            "headers": req.headers,
            "client": self._client,
            "server": self._server,
            "root_path": "",
        }
        delivered = False

        async def receive() -> Mapping[str, Any]:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            await trio.sleep_forever()
            raise AssertionError("unreachable")  # pragma: no cover

        parts: list[bytes] = []
        close = not req.keep_alive or self._draining()

        async def send(message: Mapping[str, Any]) -> None:
            nonlocal close
            if message["type"] == "http.response.start":
                status = int(message["status"])
                lines = [b"HTTP/1.1 %d %s\r\n" % (status, _REASONS.get(status, b""))]
                for name, value in message.get("headers", []):
                    if name.lower() == b"connection" and value.lower() == b"close":
                        close = True
                    lines.append(bytes(name) + b": " + bytes(value) + b"\r\n")
                lines.append(_date_line())
                if close:
                    lines.append(b"connection: close\r\n")
                lines.append(b"\r\n")
                parts.append(b"".join(lines))
            elif message["type"] == "http.response.body":
                if req.method != b"HEAD":
                    parts.append(bytes(message.get("body", b"")))
                if not message.get("more_body", False):
                    await self._send(b"".join(parts))
                    parts.clear()

        await self._app(scope, receive, send)
        return not close

    async def _send(self, data: bytes) -> None:
        """Write an answer; a client that does not take it within `body_timeout` loses
        the connection (a half-written answer cannot be followed by another)."""
        with trio.move_on_after(self._body_timeout) as scope:
            await self._stream.send_all(data)
        if scope.cancelled_caught:
            raise trio.BrokenResourceError("the client did not read its answer in time")
