"""The OCSP responder process's state: a small HTTP/1.1 server on uvloop over a read-only
LMDB (`hanko serve`) or a responder host's copy of Redis (`hanko responder`;
ocsp/status/sources.py); its connections are ocsp/status/protocol.py.

Several of these share one port (SO_REUSEPORT); each only looks up pre-signed bytes
and writes them out. ASGI was measured far too slow for this path
(docs/architecture.md), hence a plain asyncio Protocol. A request whose exact bytes
were answered from the cache in the current second and generation is answered again
without parsing (`answered`): parsing was most of a responder's Python time per
request.

Freshness without a clock call per request: a 100 ms tick renews the LMDB read
transaction and caches the Date header. Answers are cached per request (GET target or
POST body) and revalidated against the store once per generation: a cached entry is
served only if the store still holds the exact bytes it was made from. The generation
moves at a tick that sees the store's status generation moved (a certificate was
issued, revoked or rewritten: a revocation is served within that tick), and once a
second otherwise (a response re-signed with the same status is served within about a
second). Revalidating every 100 ms was about a sixth of a responder's CPU on a
1,000,000-certificate store, almost all of it B-tree lookups.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Any, Protocol

import msgspec

from core.base.httpdate import http_date
from ocsp.answers import MALFORMED, TRY_LATER, UNAUTHORIZED, Answer, Responder
from ocsp.codec import CertIdHash, IssuerHashes
from ocsp.status import http
from ocsp.status.connection import Connection, Limits, Request, State
from ocsp.status.crl_files import CrlFile, not_modified
from ocsp.status.paths import Route, Router
from ocsp.status.process import report
from ocsp.status.settings import ServerSettings
from ocsp.status.sources import Source


class Peer(Protocol):
    """What the state asks of a connection (ocsp/status/protocol.py makes them)."""

    conn: Connection
    transport: Any

    def timed_out(self) -> None: ...


TICK = 0.1
_CLOSED = State.CLOSED
_IDLE = State.IDLE
_GET = b"GET"
_POST = b"POST"
_HEAD = b"HEAD"
_PKIX_CRL = b"application/pkix-crl"
_OCSP = Route.OCSP
_CRL = Route.CRL
_READY = Route.READY
_NO_STORE = b"Cache-Control: no-store\r\n"
# Answers larger than this go out in chunks of it, with flow control.
STREAM_CHUNK = 64 << 10
# Bytes of whole requests kept for the fast path (ResponderState.answered).
ANSWERED_BYTES = 16 << 20


class Streamed(msgspec.Struct, frozen=True, gc=False):
    """An answer whose body is written from a buffer shared by every download."""

    head: bytes
    body: bytes


class _Cached(msgspec.Struct, gc=False):  # untracked by the collector, as Answer is
    answer: Answer
    raw: bytes  # the store value the answer was cut from
    gen: int
    etag: bytes
    # Last-Modified, Expires and ETag lines: fixed for the answer, so formatted once
    # (two HTTP dates were 15% of a responder's CPU when rebuilt every second).
    fixed: bytes
    second: int = -1
    wire: bytes = b""  # the keep-alive 200 response, built for `second`


class ResponderState:
    """Per-process state shared by all connections."""

    def __init__(self, settings: ServerSettings, source: Source) -> None:
        self.settings = settings
        self.source = source
        self._view = source.view
        self._status: object = None  # the source's status generation, as last read
        self._envelopes: object = None  # and its envelope generation
        self.responder = Responder(
            [IssuerHashes(i) for i in source.issuers],
            frozenset(CertIdHash(h) for h in source.hashes),
            lookup=self._view.response,
            issued=self._view.issued,
            envelope=self._view.envelope,
            refresh=self._renew,
        )
        self.router = Router(source.paths)
        self.prefix = self.router.ocsp_prefix
        self.gen = 0
        self.now = 0.0
        self.second = 0
        self.date = b""
        self.cache: dict[bytes, _Cached] = {}
        # Whole requests, byte for byte, that a cached answer was last sent for: the
        # next identical one on an idle connection is answered without parsing while
        # the answer is current (same generation, same second). Bounded in bytes.
        self.answered: dict[bytes, _Cached] = {}
        self._answered_bytes = 0
        self.sent: _Cached | None = None  # what _respond last answered with, for that
        # Open connections in the order they were accepted (dicts keep it): shedding
        # looks for the oldest idle one first.
        self.connections: dict[Peer, None] = {}
        self.capacity = settings.max_connections
        self.per_client_cap = settings.max_connections_per_client
        self.per_client: dict[str, int] = {}
        self.shed = 0
        self.refused_per_client = 0
        self.limits = Limits(
            max_header=settings.max_header,
            max_body=settings.max_body,
            idle_timeout=settings.idle_timeout,
            request_timeout=settings.request_timeout,
        )
        # Counters `hanko serve` sums over its responders (a stats line a second).
        self.successful = self.misses = self.not_modified = self.file_answers = 0
        self.not_found = 0
        self.errors: dict[bytes, int] = {MALFORMED: 0, UNAUTHORIZED: 0, TRY_LATER: 0}
        self.tick(time.monotonic(), int(time.time()))

    def tick(self, now: float, wall: int) -> None:
        """The 100 ms tick: `now` monotonic, `wall` the epoch second."""
        self.now = now
        if wall != self.second:
            self.second = wall
            self.date = http_date(wall)
            self.gen += 1
        self._renew()

    def _renew(self) -> None:
        view = self._view
        view.renew()
        status = view.status_generation()
        if status != self._status:
            self._status = status
            self.gen += 1
        envelopes = view.envelope_generation()
        if envelopes != self._envelopes:
            # A responder certificate was renewed: every answer carries the old one.
            # (At start there is nothing to forget yet: clearing costs nothing.)
            self.cache.clear()
            self.forget_answered()
            self.responder.forget_envelopes()
            self._envelopes = envelopes

    def close(self) -> None:
        self.source.close()

    def current_wire(self, entry: _Cached) -> bytes | None:
        """A remembered keep-alive answer as it goes out now: looked at again in the
        store once per generation, its Date made once per second; None once the
        store no longer holds the bytes it was cut from (then the request takes the
        full path, which answers afresh)."""
        if entry.gen != self.gen:
            if self._view.response(entry.answer.key) != entry.raw:
                return None
            entry.gen = self.gen
        self.successful += 1
        return self._keep_alive_wire(entry)

    def _keep_alive_wire(self, entry: _Cached) -> bytes:
        """The keep-alive 200 for `entry`, made once per second."""
        if entry.second != self.second:
            entry.second = self.second
            entry.wire = http.response(
                200,
                entry.answer.body,
                date=self.date,
                keep_alive=True,
                headers=self._caching(entry),
            )
        return entry.wire

    def remember_answered(self, data: bytes, entry: _Cached) -> None:
        if self._answered_bytes + len(data) > ANSWERED_BYTES:
            self.forget_answered()
        self.answered[data] = entry
        self._answered_bytes += len(data)

    def forget_answered(self) -> None:
        self.answered.clear()
        self._answered_bytes = 0

    def counts(self) -> dict[str, int]:
        e = self.errors
        return {
            "successful": self.successful,
            "malformed_request": e[MALFORMED],
            "unauthorized": e[UNAUTHORIZED],
            "try_later": e[TRY_LATER],
            "cache_misses": self.misses,
            "not_modified": self.not_modified,
            "files": self.file_answers,
            "not_found": self.not_found,
            "shed": self.shed,
            "refused_per_client": self.refused_per_client,
        }

    def admit(self, proto: Peer, address: str) -> bool:
        """Take a new connection; at capacity, close the oldest idle one to make room
        (or the oldest of all when none is idle: a client trickling a request is the
        one to go, not the one that just arrived). False, and the new one is to be
        closed, when its address holds its cap already: shedding others for it would
        let one address take every slot."""
        held = self.per_client.get(address, 0)
        if self.per_client_cap and held >= self.per_client_cap:
            self.refused_per_client += 1
            return False
        self.per_client[address] = held + 1
        conns = self.connections
        if len(conns) >= self.capacity:
            victim = next((p for p in conns if p.conn.state is _IDLE), None)
            if victim is None:
                victim = next(iter(conns))
            del conns[victim]
            victim.transport.close()
            self.shed += 1
        conns[proto] = None
        return True

    def leave(self, address: str) -> None:
        held = self.per_client.get(address, 0) - 1
        if held > 0:
            self.per_client[address] = held
        else:
            self.per_client.pop(address, None)

    async def ticker(self) -> None:
        sweep_every = int(1 / TICK)
        n = 0
        while True:
            await asyncio.sleep(TICK)
            self.tick(time.monotonic(), int(time.time()))
            n += 1
            if n % sweep_every == 0:
                report(self.counts())
                for proto in list(self.connections):
                    if self.now > proto.conn.deadline:
                        proto.timed_out()

    def handle(self, head: Request) -> bytes | Streamed:
        route = self.router.route(head.method, head.target)
        if route is not _OCSP:
            if route is _READY:
                return self._ready(head)
            return self._file(route, head)
        if head.method == _GET:
            key = head.target
            der: bytes | None = None
        elif head.method == _POST:
            key = der = head.body
        else:
            raise http.HttpError(405, "use GET or POST")
        entry = self.cache.get(key)
        if entry is not None and entry.gen != self.gen:
            raw = self._view.response(entry.answer.key)
            if raw == entry.raw:
                entry.gen = self.gen
            else:
                del self.cache[key]
                entry = None
        if entry is None:
            self.misses += 1
            if der is None:
                der = http.request_from_path(head.target, self.prefix)
                if der is None:
                    return self._plain(MALFORMED, head)
            answer = self.responder.answer(der, self.second)
            if not answer.successful:
                return self._plain(answer.body, head)
            entry = self._remember(key, answer)
        return self._respond(entry, head)

    def _file(self, route: Route, head: Request) -> bytes | Streamed:
        """A CRL or a CA certificate: GET or HEAD, conditional."""
        path = head.target.split(b"?", 1)[0]
        found: CrlFile | None = None
        source = self.source
        if route is _CRL and source.crl is not None:
            found = source.crl(path[len(self.router.crl_prefix) :].decode("latin-1"))
            content_type = _PKIX_CRL
        elif route is Route.CA_FILE:
            found = source.ca_file(path)
            content_type = source.content_type(path)
        if found is None:
            self.not_found += 1
            raise http.HttpError(404, "nothing here")
        if head.method not in (_GET, _HEAD):
            raise http.HttpError(405, "use GET or HEAD")
        self.file_answers += 1
        validators = {}
        if head.if_none_match is not None:
            validators[b"if-none-match"] = head.if_none_match
        if head.if_modified_since is not None:
            validators[b"if-modified-since"] = head.if_modified_since
        fresh = bool(validators) and not_modified(validators, found.etag, found.mtime)
        head_bytes = http.response(
            304 if fresh else 200,
            found.body,
            date=self.date,
            keep_alive=head.keep_alive,
            headers=found.headers,
            content_type=content_type,
            send_body=False,
            length=not fresh,
        )
        if fresh or head.method != _GET:
            return head_bytes
        # The body is the cached file itself: no copy per download.
        return Streamed(head_bytes, found.body)

    def _ready(self, head: Request) -> bytes:
        """/readyz, for a load balancer: 200 while this responder should get traffic."""
        if head.method not in (_GET, _HEAD):
            raise http.HttpError(405, "use GET or HEAD")
        ready, body = self.source.ready()
        return http.response(
            200 if ready else 503,
            body,
            date=self.date,
            keep_alive=head.keep_alive,
            headers=_NO_STORE,
            content_type=b"application/json",
            send_body=head.method == _GET,
        )

    def _respond(self, entry: _Cached, head: Request) -> bytes:
        self.successful += 1
        if head.if_none_match is not None and entry.etag in head.if_none_match:
            self.not_modified += 1
            return http.response(
                304,
                b"",
                date=self.date,
                keep_alive=head.keep_alive,
                headers=self._caching(entry),
                send_body=False,
            )
        if head.keep_alive:
            self.sent = entry
            return self._keep_alive_wire(entry)
        return http.response(
            200, entry.answer.body, date=self.date, keep_alive=False, headers=self._caching(entry)
        )

    def _remember(self, key: bytes, answer: Answer) -> _Cached:
        raw = self._view.response(answer.key) or b""
        etag = b'"%s"' % hashlib.sha1(answer.body).hexdigest()[:20].encode()  # noqa: S324 - an ETag, not security
        fixed = b"".join(
            (
                b"Last-Modified: ",
                http_date(answer.this_update),
                b"\r\nExpires: ",
                http_date(answer.next_update),
                b"\r\nETag: ",
                etag,
                b"\r\n",
            )
        )
        entry = _Cached(answer, raw, self.gen, etag, fixed)
        if len(self.cache) >= self.settings.cache_entries:
            # Starting again beats LRU bookkeeping on every hit: the working set refills
            # at miss cost (for a pre-signed answer, a parse and a lookup).
            self.cache.clear()
            self.forget_answered()
        self.cache[key] = entry
        return entry

    def _caching(self, entry: _Cached) -> bytes:
        # The tick's second may trail a response signed within the last 100 ms: never
        # promise more than the response's own validity.
        answer = entry.answer
        max_age = max(0, answer.next_update - max(self.second, answer.this_update))
        return entry.fixed + (
            b"Cache-Control: max-age=%d, public, no-transform, must-revalidate\r\n" % max_age
        )

    def _plain(self, body: bytes, head: Request) -> bytes:
        """An OCSP error answer: not cacheable, it may change as soon as issuance or
        the refresher catches up."""
        self.errors[body] = self.errors.get(body, 0) + 1
        return http.response(
            200, body, date=self.date, keep_alive=head.keep_alive, headers=_NO_STORE
        )
