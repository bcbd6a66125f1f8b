"""One HTTP/1.1 connection of the API listener, with no I/O (the h11 shape): bytes in,
events out, answers checked on their way back. The trio edge (core/api/http1_io.py)
only moves bytes, watches the clock and calls the application.

The listener faces the internet before anyone has authenticated, so every byte a
client sends is counted as it is fed, not once something completes:
- a request head is found by its blank line within `max_header` bytes (431 past it)
  and only then parsed, by llhttp (httptools), one head at a time;
- the body is framed here (Content-Length, or chunked counted chunk by chunk), and
  only once the edge has admitted the head with the route's body limit: a declared
  length over it is refused (413) before a body byte is read;
- a chunked body's trailer fields are refused, never merged into the head (RFC 9110
  6.5.1: a proxy that checked the head never saw them);
- HTTP/1.1 needs exactly one well-formed Host; HTTP/1.0 at most one;
- a response's status, header names and values, and length are checked before a byte
  of it is written (a handler's bug becomes a 500, not a broken or split answer).

States, as data: IDLE (between requests, `idle` deadline), HEAD (a head under way,
`header_timeout` from the first byte), ADMIT (the head is complete; the edge decides),
BODY (`body_timeout` from the head), RESPOND (the request is whole; the application
answers; nothing more is parsed, pipelined bytes wait), CLOSED.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from core.api.http1_head import REASONS, Head, Refusal, Refused, parse_head
from core.base.httpdate import http_date

MAX_CHUNK_LINE = 1024  # a chunk-size line with its extensions; a trailer line
_TOKEN = re.compile(rb"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_VALUE_BAD = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_NO_BODY_STATUS = frozenset((204, 304))
_HEX = re.compile(rb"^[0-9A-Fa-f]{1,8}$")


class Phase(enum.Enum):
    IDLE = 0
    HEAD = 1
    ADMIT = 2
    BODY = 3
    RESPOND = 4
    CLOSED = 5


@dataclass(frozen=True, slots=True)
class Limits:
    max_header: int = 16 << 10
    header_timeout: float = 10.0  # a head, from its first byte; also the idle time
    body_timeout: float = 30.0  # a body, from the end of its head


@dataclass(frozen=True, slots=True)
class Body:
    data: bytes


@dataclass(frozen=True, slots=True)
class End:
    """The request is whole."""


class _Need(enum.Enum):
    DATA = 0  # read more from the client
    PAUSED = 1  # nothing until the edge acts (admit, answered)


NEED_DATA = _Need.DATA
PAUSED = _Need.PAUSED
Event = Head | Body | End | Refusal | _Need


class ResponseError(Exception):
    """An answer that must not be written as given (a handler's bug)."""


class _Chunk(enum.Enum):
    SIZE = 0
    DATA = 1
    DATA_END = 2
    TRAILER = 3


class Connection:
    """Feed it what the socket read (`receive`), take `next_event()` until it needs data
    or pauses; `admit` each head; `answer` each request."""

    def __init__(self, limits: Limits, now: float) -> None:
        self._limits = limits
        self._buf = bytearray()
        self._scanned = 0  # bytes of _buf already searched for the head's end
        self._eof = False
        self.phase = Phase.IDLE
        self.deadline = now + limits.header_timeout
        self.head: Head | None = None
        self._limit = 0  # the admitted body limit
        self._remaining = 0  # of a Content-Length body, or of the current chunk
        self._chunk = _Chunk.SIZE
        self._body_bytes = 0
        self._keep_alive = True
        self.requests = 0

    # -- input ------------------------------------------------------------------------

    def receive(self, data: bytes, now: float) -> None:
        """Bytes from the client; b"" when it closed its side."""
        if not data:
            self._eof = True
            return
        if self.phase is Phase.IDLE:
            self.phase = Phase.HEAD
            self.deadline = now + self._limits.header_timeout
        self._buf += data

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def next_event(self, now: float) -> Event:
        try:
            return self._next(now)
        except Refused as exc:
            self.phase = Phase.CLOSED
            self._buf.clear()
            return exc.refusal

    def _next(self, now: float) -> Event:
        phase = self.phase
        if phase in (Phase.ADMIT, Phase.RESPOND, Phase.CLOSED):
            return PAUSED
        if phase is Phase.BODY:
            return self._body()
        # IDLE with pipelined bytes waiting, or HEAD.
        while self._buf[:2] == b"\r\n":  # RFC 9112 2.2: empty lines before a request
            del self._buf[:2]
        if not self._buf:
            if self._eof:
                self.phase = Phase.CLOSED
                return PAUSED
            return NEED_DATA
        if phase is Phase.IDLE:
            self.phase = Phase.HEAD
            self.deadline = now + self._limits.header_timeout
        end = self._buf.find(b"\r\n\r\n", max(0, self._scanned - 3))
        if end < 0:
            self._scanned = len(self._buf)
            if len(self._buf) > self._limits.max_header:
                raise Refused(431, "head_too_large", "the request head is too large")
            if self._eof:
                raise Refused(400, "malformed_request", "the connection closed mid-head")
            return NEED_DATA
        end += 4
        if end > self._limits.max_header:
            raise Refused(431, "head_too_large", "the request head is too large")
        raw = bytes(self._buf[:end])
        del self._buf[:end]
        self._scanned = 0
        self.head = head = parse_head(raw)
        self.phase = Phase.ADMIT
        self.deadline = now + self._limits.body_timeout
        self._keep_alive = head.keep_alive
        return head

    def admit(self, limit: int) -> Refusal | None:
        """The edge takes the head, with a body of at most `limit` bytes; a declared
        length over it is the connection's last word (413) before any body is read."""
        head = self.head
        assert head is not None  # noqa: S101 - the edge admits only a head
        assert self.phase is Phase.ADMIT  # noqa: S101
        if head.content_length is not None and head.content_length > limit:
            self.phase = Phase.CLOSED
            return Refusal(413, "body_too_large", f"the request body exceeds {limit} bytes")
        self._limit = limit
        self._body_bytes = 0
        self._chunk = _Chunk.SIZE
        self._remaining = head.content_length or 0
        self.phase = Phase.BODY
        return None

    def refuse(self) -> None:
        """The edge answered the head itself (404, 401...): the connection goes on only
        when no body follows it (an unread body cannot be told from the next request)."""
        head = self.head
        assert head is not None  # noqa: S101
        assert self.phase is Phase.ADMIT  # noqa: S101
        if head.has_body or not head.keep_alive:
            self.phase = Phase.CLOSED
        else:
            self.phase = Phase.RESPOND
            self._keep_alive = True

    @property
    def body_started(self) -> bool:
        """Whether any body byte is already here (then no 100 Continue is owed)."""
        return bool(self._buf)

    def _take(self) -> Body | None:
        """Up to `_remaining` body bytes of what is here; None when nothing is."""
        if not self._buf:
            if self._eof:
                raise Refused(400, "body_incomplete", "the connection closed mid-body")
            return None
        take = min(self._remaining, len(self._buf))
        data = bytes(self._buf[:take])
        del self._buf[:take]
        self._remaining -= take
        return Body(data)

    def _body(self) -> Event:
        head = self.head
        assert head is not None  # noqa: S101
        if head.chunked:
            return self._chunked()
        if self._remaining == 0:
            return self._end()
        return self._take() or NEED_DATA

    def _line(self) -> bytes | None:
        end = self._buf.find(b"\r\n")
        if end < 0 and self._eof:
            raise Refused(400, "body_incomplete", "the connection closed mid-body")
        if end > MAX_CHUNK_LINE or (end < 0 and len(self._buf) > MAX_CHUNK_LINE):
            raise Refused(400, "malformed_chunk", "a chunk line is too long")
        if end < 0:
            return None
        line = bytes(self._buf[:end])
        del self._buf[: end + 2]
        return line

    def _chunked(self) -> Event:
        while True:
            if self._chunk is _Chunk.DATA:
                body = self._take()
                if body is None:
                    return NEED_DATA
                if self._remaining == 0:
                    self._chunk = _Chunk.DATA_END
                return body
            line = self._line()
            if line is None:
                return NEED_DATA
            if self._chunk_line(line):
                return self._end()

    def _chunk_line(self, line: bytes) -> bool:
        """One line of chunked framing; True once the message is complete."""
        state = self._chunk
        if state is _Chunk.DATA_END:
            if line:
                raise Refused(400, "malformed_chunk", "chunk data longer than its size")
            self._chunk = _Chunk.SIZE
            return False
        if state is _Chunk.TRAILER:  # nothing but the blank line that ends the message
            if line:
                raise Refused(
                    400,
                    "trailer_refused",
                    "trailer fields are not taken: send every field in the head",
                )
            return True
        size_text = line.split(b";", 1)[0].strip()
        if not _HEX.match(size_text):
            raise Refused(400, "malformed_chunk", "a chunk size is not hexadecimal")
        size = int(size_text, 16)
        self._body_bytes += size
        if self._body_bytes > self._limit:
            raise Refused(413, "body_too_large", f"the request body exceeds {self._limit} bytes")
        self._remaining = size
        self._chunk = _Chunk.DATA if size else _Chunk.TRAILER
        return False

    def _end(self) -> End:
        self.phase = Phase.RESPOND
        self.requests += 1
        return End()

    # -- output -----------------------------------------------------------------------

    def expired(self) -> Refusal | None:
        """What to tell a client whose deadline passed: 408 with a request under way;
        None for an idle connection (closed without a word)."""
        phase = self.phase
        self.phase = Phase.CLOSED
        if phase is Phase.HEAD:
            return Refusal(408, "header_timeout", "the request head took too long")
        if phase is Phase.BODY:
            return Refusal(408, "body_timeout", "the request body took too long")
        return None

    def response(
        self,
        status: int,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        *,
        now: int,
        close: bool = False,
    ) -> bytes:
        """The bytes of the answer to the current request (the head's method decides
        whether the body goes out), checked; ResponseError if it must not go out."""
        if not 200 <= status <= 599:
            raise ResponseError(f"status {status} is not a final status")
        head = self.head
        method = head.method if head is not None else "GET"
        lines, length_given, close_asked = _checked_fields(headers)
        if length_given is not None and length_given != len(body) and method != "HEAD":
            raise ResponseError(f"content-length {length_given} for a body of {len(body)}")
        if status in _NO_BODY_STATUS:
            if body:
                raise ResponseError(f"a {status} answer has no body")
        else:
            lines.append(
                b"content-length: %d\r\n" % (len(body) if length_given is None else length_given)
            )
        lines.append(b"date: " + http_date(now) + b"\r\n")
        if close or close_asked or not self._keep_alive or self.phase is Phase.CLOSED:
            self._keep_alive = False
            lines.append(b"connection: close\r\n")
        lines.append(b"\r\n")
        if method != "HEAD":
            lines.append(body)
        return b"HTTP/1.1 %d %s\r\n" % (status, REASONS.get(status, b"")) + b"".join(lines)

    def answered(self, now: float) -> bool:
        """The answer went out; whether the connection goes on (then IDLE again, or a
        pipelined head already waiting)."""
        if not self._keep_alive or self.phase is Phase.CLOSED:
            self.phase = Phase.CLOSED
            return False
        self.phase = Phase.IDLE
        self.head = None
        self.deadline = now + self._limits.header_timeout
        return True


def error_bytes(refusal: Refusal, now: int) -> bytes:
    """The router's JSON error shape for a refusal no route rendered, with
    `Connection: close`."""
    body = b'{"error":"%s","detail":"%s"}' % (refusal.code.encode(), refusal.detail.encode())
    status = refusal.status
    return b"".join(
        (
            b"HTTP/1.1 %d %s\r\n" % (status, REASONS.get(status, b"")),
            b"content-type: application/json\r\ncontent-length: %d\r\n" % len(body),
            b"cache-control: no-store\r\ndate: " + http_date(now) + b"\r\n",
            b"connection: close\r\n\r\n",
            body,
        )
    )


def _checked_fields(headers: list[tuple[bytes, bytes]]) -> tuple[list[bytes], int | None, bool]:
    """A handler's header fields as lines, checked: valid names, no CR, LF or NUL in a
    value (no split answers), no framing of their own. Also the Content-Length they
    give and whether they ask to close; Date and Connection are the connection's."""
    lines: list[bytes] = []
    length: int | None = None
    close = False
    for name, value in headers:
        if not _TOKEN.match(name) or _VALUE_BAD.search(value):
            raise ResponseError(f"header {name!r} is not a valid field")
        lower = name.lower()
        if lower == b"content-length":
            if length is not None or not value.isdigit():
                raise ResponseError("content-length given twice or not a number")
            length = int(value)
        elif lower == b"transfer-encoding":
            raise ResponseError("answers are sent with a length, not chunked")
        elif lower == b"connection":
            close = close or value.lower() == b"close"
        elif lower != b"date":
            lines.append(name + b": " + value + b"\r\n")
    return lines, length, close
