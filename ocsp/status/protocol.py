"""asyncio's side of one responder connection (ocsp/status/server.py holds the state it
answers from): bytes to the sans-IO Connection, answers back, flow control for large
files, and the fast path for a request answered before, byte for byte."""

from __future__ import annotations

import asyncio
import collections
from typing import Any

from ocsp.status import http
from ocsp.status.connection import Connection, State
from ocsp.status.server import STREAM_CHUNK, ResponderState, Streamed

_CLOSED = State.CLOSED
_IDLE = State.IDLE


class Protocol(asyncio.Protocol):
    """asyncio's side of one connection: bytes to the sans-IO Connection and answers
    back. The ticker closes it when its deadline passes.

    Answers go out whole, except a large one (a CRL of megabytes): it is written a
    chunk at a time, the next only once the client has taken the last (asyncio's
    flow control), so a client that does not read holds one chunk of memory rather
    than a copy of the file. Meanwhile nothing more is read from it."""

    __slots__ = ("_address", "_backlog", "_paused", "conn", "state", "transport")

    def __init__(self, state: ResponderState) -> None:
        self.state = state
        self.conn = Connection(state.limits, state.now)
        self.transport: Any = None
        self._backlog: collections.deque[memoryview] = collections.deque()
        self._paused = False
        self._address: str | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        peer = transport.get_extra_info("peername")
        address = str(peer[0]) if peer else ""
        if not self.state.admit(self, address):
            transport.abort()
            return
        self._address = address

    def connection_lost(self, exc: Exception | None) -> None:
        self.state.connections.pop(self, None)
        if self._address is not None:
            self.state.leave(self._address)
            self._address = None
        self._backlog.clear()

    def pause_writing(self) -> None:  # a client that does not read: stop reading it
        self._paused = True
        self.transport.pause_reading()

    def resume_writing(self) -> None:
        self._paused = False
        if self._backlog:
            self._pump()
        if not self._paused and not self._backlog:
            self.transport.resume_reading()

    def _write(self, data: bytes | Streamed) -> None:
        if data.__class__ is bytes and len(data) <= STREAM_CHUNK and not self._backlog:
            self.transport.write(data)  # every OCSP answer: one write
            return
        if isinstance(data, Streamed):
            self._write(data.head)
            data = data.body
        view = memoryview(data)
        self._backlog.extend(view[i : i + STREAM_CHUNK] for i in range(0, len(view), STREAM_CHUNK))
        self.transport.pause_reading()
        self._pump()

    def _pump(self) -> None:
        backlog = self._backlog
        while backlog and not self._paused:
            self.transport.write(backlog.popleft())
        # A download that makes progress is not idle.
        self.conn.deadline = max(
            self.conn.deadline, self.state.now + self.state.limits.idle_timeout
        )
        if not backlog and not self._paused:
            if self.conn.state is _CLOSED:
                self.transport.close()
            else:
                self.transport.resume_reading()

    def timed_out(self) -> None:
        err = self.conn.expired()
        if err is not None:  # a request started and never finished: a slow client
            self.transport.write(http.error_response(err, date=self.state.date))
        self.transport.close()

    def _answered_again(self, data: bytes) -> bool:
        """The fast path: the very bytes of a request answered from the cache before,
        on a connection between requests (its parser holds nothing): its answer as it
        stands now, without parsing the request again."""
        state = self.state
        hit = state.answered.get(data)
        if hit is None:
            return False
        wire = state.current_wire(hit)
        if wire is None:
            return False
        self.conn.deadline = state.now + state.limits.idle_timeout
        self._write(wire)
        return True

    def data_received(self, data: bytes) -> None:
        state = self.state
        conn = self.conn
        idle = conn.state is _IDLE
        if idle and self._answered_again(data):
            return
        requests, err = conn.receive(data, state.now)
        if len(requests) == 1:  # the common case: one request per read
            head = requests[0]
            state.sent = None
            try:
                self._write(state.handle(head))
            except http.HttpError as exc:  # a method or a file we do not serve
                err = exc
            sent = state.sent
            if (
                sent is not None
                and idle
                and err is None
                and conn.state is _IDLE
                and head.if_none_match is None
                and head.if_modified_since is None
            ):
                state.remember_answered(data, sent)
        elif requests:  # pipelined: one write for all the answers
            out: list[bytes] = []
            for r in requests:
                try:
                    answer = state.handle(r)
                except http.HttpError as exc:  # a method we do not serve: the last answer
                    err = exc
                    break
                if isinstance(answer, Streamed):
                    self._write(b"".join(out))
                    self._write(answer)
                    out = []
                else:
                    out.append(answer)
            self._write(b"".join(out))
        if err is not None:
            headers = b"Allow: GET, POST\r\n" if err.status == 405 else b""
            self._write(http.error_response(err, date=state.date, headers=headers))
            conn.state = _CLOSED
        if conn.state is _CLOSED and not self._backlog:
            self.transport.close()
