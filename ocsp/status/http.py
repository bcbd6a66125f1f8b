"""The responder's HTTP/1.1 answers, with no I/O: response bytes, error answers and the
OCSP request inside a GET path. Requests are framed by ocsp/status/connection.py.

Only what an OCSP responder needs (RFC 6960 appendix A, RFC 9919 section 5): GET with
the request in the path, POST with it in the body, keep-alive and pipelining.
"""

from __future__ import annotations

import base64
import binascii
from urllib.parse import unquote_to_bytes


class HttpError(Exception):
    """A request the server answers with a 4xx and then closes the connection."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


_REASONS = {
    200: b"OK",
    304: b"Not Modified",
    400: b"Bad Request",
    404: b"Not Found",
    405: b"Method Not Allowed",
    408: b"Request Timeout",
    411: b"Length Required",
    413: b"Content Too Large",
    414: b"URI Too Long",
    431: b"Request Header Fields Too Large",
    503: b"Service Unavailable",
    505: b"HTTP Version Not Supported",
}


def request_from_path(target: bytes, prefix: bytes) -> bytes | None:
    """The DER OCSP request in a GET target: base64 (standard or URL-safe, padding
    optional), URL-encoded or not, after `prefix` or after the root. None if it is not
    base64."""
    path = target[len(prefix) :] if target.startswith(prefix) else target[1:]
    if b"%" in path:
        path = unquote_to_bytes(path)
    if b"-" in path or b"_" in path:
        path = path.replace(b"-", b"+").replace(b"_", b"/")
    path += b"=" * (-len(path) % 4)
    try:
        return base64.b64decode(path, validate=True)
    except (binascii.Error, ValueError):
        return None


def response(
    status: int,
    body: bytes,
    *,
    date: bytes,
    keep_alive: bool,
    headers: bytes = b"",
    content_type: bytes = b"application/ocsp-response",
    send_body: bool = True,
    length: bool = True,
) -> bytes:
    """A whole response; `headers` holds extra lines, each ending in CRLF. `length`
    False: no Content-Length (a 304 carries none of its own)."""
    return b"".join(
        (
            b"HTTP/1.1 %d %s\r\n" % (status, _REASONS[status]),
            b"Server: hanko\r\nDate: ",
            date,
            b"\r\nContent-Type: ",
            content_type,
            b"\r\nContent-Length: %d\r\n" % len(body) if length else b"\r\n",
            headers,
            b"" if keep_alive else b"Connection: close\r\n",
            b"\r\n",
            body if send_body else b"",
        )
    )


def error_response(err: HttpError, *, date: bytes, headers: bytes = b"") -> bytes:
    body = b'{"error": "%s"}\n' % err.reason.encode()
    return response(
        err.status,
        body,
        date=date,
        keep_alive=False,
        headers=headers,
        content_type=b"application/json",
    )
