"""The trio edge of one API connection: moves bytes between the stream and the sans-IO
connection (core/api/http1.py), watches its deadlines, and calls the application.

hypercorn spent about 550 us of CPU on a request that does nothing over TLS (1,825/s on
/healthz on one core) against this layer's fraction of it (docs/architecture.md); the
ACME flow makes five requests per certificate.

Memory is held to what the limits say, whoever the client: a head to `max_header`, a
body to its route's limit (refused from the head when its length says so, counted as
it arrives when chunked), and the bodies of all connections together to
`max_buffered`: past it, no connection reads more body until room is made (its body
deadline keeps running). Nothing is read while the application works on a request.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

import trio

from core.api.http1 import (
    NEED_DATA,
    Body,
    Connection,
    End,
    Limits,
    Phase,
    ResponseError,
    error_bytes,
)
from core.api.http1_head import Head, Refusal, scope_of
from core.api.http_errors import HttpError

log = logging.getLogger("hanko.http")
MAX_RECV = 65536
# After refusing a request whose body was not read, the rest of it is read and dropped
# for this long (or this much) before closing, so the client reads the refusal rather
# than a reset (nginx's lingering close).
LINGER_SECONDS = 1.0
LINGER_BYTES = 256 << 10
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"

Send = Callable[[Mapping[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[Mapping[str, Any]]]


class Admission(Protocol):
    @property
    def limit(self) -> int: ...

    @property
    def refusal(self) -> HttpError | None: ...


class AdmittingApp(Protocol):
    """An ASGI application that can decide a request from its head (core/api/router.py)."""

    def admit(self, scope: dict[str, Any]) -> Admission: ...

    def refuse(self, scope: dict[str, Any], error: HttpError) -> None: ...

    async def __call__(self, scope: Any, receive: Receive, send: Send) -> None: ...


class BufferBudget:
    """Body bytes held by all connections of a listener, at most `capacity`."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.used = 0
        self.peak = 0
        self._room = trio.Event()

    async def room(self) -> None:
        """Wait until the listener holds less than its capacity."""
        while self.used >= self.capacity:
            if self._room.is_set():
                self._room = trio.Event()
            await self._room.wait()

    def take(self, n: int) -> None:
        self.used += n
        self.peak = max(self.peak, self.used)

    def give(self, n: int) -> None:
        self.used -= n
        if self.used < self.capacity:
            self._room.set()


class Http1Server:
    """Serve one connection until the client leaves, breaks the protocol or runs out of
    time, or the application asks to close."""

    def __init__(
        self,
        stream: trio.abc.Stream,
        app: AdmittingApp,
        *,
        scheme: str,
        client: tuple[str, int] | None,
        server: tuple[str, int] | None,
        limits: Limits,
        budget: BufferBudget,
        draining: Callable[[], bool] = lambda: False,
        clock: Callable[[], float] = trio.current_time,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._stream = stream
        self._app = app
        self._scheme = scheme
        self._client = client
        self._server = server
        self._budget = budget
        self._draining = draining
        self._clock = clock
        self._wall = wall
        self._limits = limits
        self._conn = Connection(limits, clock())
        self._idle: trio.CancelScope | None = None
        self._held = 0  # budget bytes this connection holds

    def close_if_idle(self) -> None:
        """Draining: end the connection if it waits for a request none of which has
        arrived; one under way is answered, with `Connection: close`."""
        if self._idle is not None and self._conn.phase is Phase.IDLE:
            self._idle.cancel()

    async def run(self) -> None:
        """Serve until done; a client that leaves or stops reading ends it quietly,
        also while it is being told why it is refused."""
        try:
            await self._serve()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return
        finally:
            self._budget.give(self._held)
            self._held = 0

    async def _serve(self) -> None:
        conn = self._conn
        body: list[bytes] = []
        scope: dict[str, Any] = {}
        while True:
            event = conn.next_event(self._clock())
            if event is NEED_DATA:
                if not await self._read():
                    await self._expired(scope)
                    return
            elif isinstance(event, Head):
                scope = scope_of(
                    event, scheme=self._scheme, client=self._client, server=self._server
                )
                if not await self._admit(event, scope):
                    return
                body = []
            elif isinstance(event, Body):
                body.append(event.data)
                self._budget.take(len(event.data))
                self._held += len(event.data)
            elif isinstance(event, End):
                if not await self._answer(scope, b"".join(body)):
                    return
                body = []
            elif isinstance(event, Refusal):
                await self._refused(event, scope)
                return
            else:  # PAUSED: closed, or the client left between requests
                return

    async def _read(self) -> bool:
        """More bytes into the connection; False when its deadline passed."""
        conn = self._conn
        with trio.move_on_at(conn.deadline) as timer:
            if conn.phase is Phase.BODY:
                await self._budget.room()
            if conn.phase is not Phase.IDLE:
                data = await self._stream.receive_some(MAX_RECV)
            elif self._draining():
                data = b""  # no new request on a draining listener
            else:
                with trio.CancelScope() as idle:
                    self._idle = idle
                    data = b""
                    data = await self._stream.receive_some(MAX_RECV)
                self._idle = None
            conn.receive(bytes(data), self._clock())
        return not timer.cancelled_caught

    async def _expired(self, scope: dict[str, Any]) -> None:
        refusal = self._conn.expired()
        if refusal is not None:
            await self._refused(refusal, scope)

    async def _admit(self, head: Head, scope: dict[str, Any]) -> bool:
        """Admit the head; whether the connection goes on."""
        conn = self._conn
        admitted = self._app.admit(scope)
        if admitted.refusal is not None:
            conn.refuse()
            return await self._answer(scope, b"", linger=head.has_body)
        too_large = conn.admit(admitted.limit)
        if too_large is not None:
            await self._refused(too_large, scope)
            return False
        if head.expect_continue and head.has_body and not conn.body_started:
            await self._send(_CONTINUE)
        return True

    async def _refused(self, refusal: Refusal, scope: dict[str, Any]) -> None:
        """The connection's last word: in the route's shape once a head was admitted,
        else plain JSON; then a lingering close."""
        if scope:
            self._app.refuse(scope, HttpError(refusal.status, refusal.code, refusal.detail))
            await self._answer(scope, b"", linger=True, close=True)
            return
        await self._send(error_bytes(refusal, int(self._wall())))
        await self._linger()

    async def _answer(
        self, scope: dict[str, Any], body: bytes, *, linger: bool = False, close: bool = False
    ) -> bool:
        """Run the application for one request and write its answer; whether the
        connection goes on."""
        conn = self._conn
        status, headers, payload = await self._call(scope, body)
        close = close or self._draining()
        now = int(self._wall())
        try:
            wire = conn.response(status, headers, payload, now=now, close=close)
        except ResponseError:
            log.exception("a handler's answer was refused", extra={"event": "http.bad_answer"})
            wire = conn.response(
                500,
                [(b"content-type", b"application/json")],
                b'{"error":"internal_error","detail":"internal error (logged)"}',
                now=now,
                close=True,
            )
        await self._send(wire)
        self._budget.give(self._held)
        self._held = 0
        if conn.answered(self._clock()):
            return True
        if linger:
            await self._linger()
        return False

    async def _call(
        self, scope: dict[str, Any], body: bytes
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        delivered = False

        async def receive() -> Mapping[str, Any]:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            await trio.sleep_forever()
            raise AssertionError("unreachable")  # pragma: no cover

        start: dict[str, Any] = {}
        parts: list[bytes] = []

        async def send(message: Mapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                parts.append(bytes(message.get("body", b"")))

        try:
            await self._app(scope, receive, send)
        except Exception:
            log.exception("the application failed", extra={"event": "http.app_failed"})
            start.clear()
        if not start:
            body500 = b'{"error":"internal_error","detail":"internal error (logged)"}'
            return 500, [(b"content-type", b"application/json")], body500
        headers = [(bytes(n), bytes(v)) for n, v in start.get("headers", [])]
        return int(start["status"]), headers, b"".join(parts)

    async def _linger(self) -> None:
        """Read and drop what the client still sends, briefly, before closing."""
        dropped = 0
        with trio.move_on_after(LINGER_SECONDS):
            while dropped < LINGER_BYTES:
                data = await self._stream.receive_some(MAX_RECV)
                if not data:
                    return
                dropped += len(data)

    async def _send(self, data: bytes) -> None:
        """Write an answer; a client that does not take it within the body timeout
        loses the connection (a half-written answer cannot be followed by another)."""
        with trio.move_on_after(self._limits.body_timeout) as timer:
            await self._stream.send_all(data)
        if timer.cancelled_caught:
            raise trio.BrokenResourceError("the client did not read its answer in time")
