"""A request head of the API listener, with no I/O: found by the connection
(core/api/http1.py), parsed here by llhttp (httptools) and checked against what the API
takes: HTTP/1.0 or 1.1, exactly one well-formed Host in HTTP/1.1 (at most one in 1.0),
Content-Length or chunked framing never both, no upgrades, Expect only 100-continue.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import httptools

REASONS = {
    status: phrase.encode()
    for status, phrase in (
        (100, "Continue"),
        (200, "OK"),
        (201, "Created"),
        (202, "Accepted"),
        (204, "No Content"),
        (304, "Not Modified"),
        (400, "Bad Request"),
        (401, "Unauthorized"),
        (403, "Forbidden"),
        (404, "Not Found"),
        (405, "Method Not Allowed"),
        (408, "Request Timeout"),
        (409, "Conflict"),
        (413, "Content Too Large"),
        (415, "Unsupported Media Type"),
        (417, "Expectation Failed"),
        (422, "Unprocessable Content"),
        (429, "Too Many Requests"),
        (431, "Request Header Fields Too Large"),
        (500, "Internal Server Error"),
        (501, "Not Implemented"),
        (503, "Service Unavailable"),
        (505, "HTTP Version Not Supported"),
    )
}
# RFC 9110 7.2 / RFC 3986 3.2.2: host [ ":" port ], a reg-name, an IPv4 or an IP literal.
_HOST = re.compile(rb"^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~%!$&'()*+,;=-]+)(?::[0-9]{1,5})?$")


@dataclass(frozen=True, slots=True)
class Head:
    """A complete, checked request head."""

    method: str
    path: str  # percent-decoded
    raw_path: bytes
    query: bytes
    version: str
    headers: list[tuple[bytes, bytes]]  # names lower-cased, in order
    keep_alive: bool
    host: str
    content_length: int | None
    chunked: bool
    expect_continue: bool

    @property
    def has_body(self) -> bool:
        return self.chunked or bool(self.content_length)

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None


@dataclass(frozen=True, slots=True)
class Refusal:
    """The connection's last word: answer it (`Connection: close`) and close."""

    status: int
    code: str
    detail: str


class _HeadParser:
    """llhttp's callbacks for one request head. The method, version and keep-alive are
    read in `on_headers_complete`: once a message without a body completes, llhttp
    resets them."""

    __slots__ = ("complete", "headers", "keep_alive", "method", "parser", "url", "version")

    def __init__(self) -> None:
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.complete = False
        self.parser: Any = None
        self.method = b""
        self.version = ""
        self.keep_alive = False

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        parser = self.parser
        self.method = parser.get_method()
        self.version = parser.get_http_version()
        self.keep_alive = parser.should_keep_alive()
        self.complete = True


class Refused(Exception):
    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.refusal = Refusal(status, code, detail)


_FRAMING = re.compile(rb"\r\n(content-length|transfer-encoding)[ \t]*:", re.IGNORECASE)


def _llhttp(raw: bytes) -> _HeadParser:
    cb = _HeadParser()
    parser = cb.parser = httptools.HttpRequestParser(cb)
    try:
        parser.feed_data(raw)
    except httptools.HttpParserUpgrade:
        raise Refused(400, "upgrade_refused", "protocol upgrades are not served") from None
    except httptools.HttpParserError:
        if len({m.lower() for m in _FRAMING.findall(raw)}) == 2:
            # RFC 9112 6.3: the two framings may disagree (request smuggling).
            raise Refused(
                400, "ambiguous_framing", "Content-Length and Transfer-Encoding together"
            ) from None
        raise Refused(400, "malformed_request", "the request is not valid HTTP/1.1") from None
    if not cb.complete:  # cannot happen with a blank line fed; refuse all the same
        raise Refused(400, "malformed_request", "the request head is incomplete")
    return cb


def _host(version: str, headers: list[tuple[bytes, bytes]]) -> str:
    hosts = [value for name, value in headers if name == b"host"]
    if len(hosts) > 1 or (version == "1.1" and not hosts):
        raise Refused(400, "host_required", "send exactly one Host header (RFC 9112 3.2)")
    host = hosts[0].strip() if hosts else b""
    if hosts and not _HOST.match(host):
        raise Refused(400, "host_invalid", "the Host header is not a host[:port]")
    return host.decode("latin-1")


def _framing(version: str, headers: list[tuple[bytes, bytes]]) -> tuple[int | None, bool, bool]:
    """Content-Length, chunked, and Expect: 100-continue."""
    length: int | None = None
    chunked = expect = False
    for name, value in headers:
        if name == b"content-length":
            length = int(value)  # llhttp refused anything but digits, and two of them
        elif name == b"transfer-encoding":
            if version == "1.0":
                raise Refused(400, "malformed_request", "Transfer-Encoding in an HTTP/1.0 request")
            if value.strip().lower() != b"chunked":
                raise Refused(501, "transfer_coding", "only the chunked transfer coding is taken")
            chunked = True
        elif name == b"expect":
            if value.strip().lower() != b"100-continue":
                raise Refused(417, "expectation_failed", "only Expect: 100-continue is met")
            expect = version == "1.1"
    return length, chunked, expect


def parse_head(raw: bytes) -> Head:
    """One head (its blank line included), parsed and checked; Refused otherwise."""
    cb = _llhttp(raw)
    version = cb.version
    if version not in ("1.1", "1.0"):
        raise Refused(505, "http_version", "only HTTP/1.0 and HTTP/1.1")
    headers = cb.headers
    host = _host(version, headers)
    length, chunked, expect = _framing(version, headers)
    url = httptools.parse_url(cb.url)
    raw_path = url.path or b"/"
    return Head(
        method=cb.method.decode("ascii"),
        path=unquote(raw_path.decode("latin-1")),
        raw_path=raw_path,
        query=url.query or b"",
        version=version,
        headers=headers,
        keep_alive=cb.keep_alive,
        host=host,
        content_length=length,
        chunked=chunked,
        expect_continue=expect,
    )


def scope_of(head: Head, *, scheme: str, client: Any, server: Any) -> dict[str, Any]:
    """The ASGI scope of a head."""
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": head.version,
        "method": head.method,
        "scheme": scheme,
        "path": head.path,
        "raw_path": head.raw_path,
        "query_string": head.query,
        "headers": head.headers,
        "client": client,
        "server": server,
        "root_path": "",
    }
