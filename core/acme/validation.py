"""Challenge validation (RFC 8555 8.3, 8.4): a real HTTP fetch of the token for
http-01, a real TXT lookup for dns-01, through the CA's one resolver (core/dns).

http-01 connects only where the outbound address policy allows (core/dns/outbound.py:
public unicast, resolved once, connected to the address checked) unless told otherwise
(`[acme] allow_private_targets`, for tests). Redirects are not followed. Every lookup
and fetch has a deadline. What a refusal says names the client's own name and what it
answered, never an address the CA's resolver returned.
"""

from __future__ import annotations

import hashlib

import h11
import msgspec
import trio

from core.acme.jws import b64encode
from core.dns.outbound import TargetRefused, checked_addresses
from core.dns.resolver import DnsError, Resolver

MAX_BODY = 512  # a key authorization is about 130 bytes
MAX_HEAD = 8192


class ValidationStatistics(msgspec.Struct, frozen=True):
    attempted: int
    passed: int
    failed: int


def key_authorization(token: str, thumbprint: str) -> str:
    return f"{token}.{thumbprint}"


def dns01_value(key_auth: str) -> str:
    return b64encode(hashlib.sha256(key_auth.encode()).digest())


async def fetch_bounded(
    address: str, port: int, host: str, path: str, timeout: float
) -> tuple[int, bytes]:
    """GET `path` from `address` (already checked) as `host`, HTTP/1.1 through h11
    (a client per fetch costs nothing to make, where httpx's costs about 0.5 ms): the
    status and at most MAX_BODY + 1 bytes of the body (a server cannot make the CA read
    more, nor more than MAX_HEAD of head)."""
    conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD)
    request = h11.Request(
        method="GET",
        target=path,
        headers=[
            ("Host", host),
            ("User-Agent", "hanko"),
            ("Accept", "*/*"),
            ("Connection", "close"),
        ],
    )
    status, body = 0, b""
    with trio.fail_after(timeout):
        stream = await trio.open_tcp_stream(address, port)
        async with stream:
            await stream.send_all(conn.send(request) + conn.send(h11.EndOfMessage()))
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    conn.receive_data(await stream.receive_some(4096))
                elif isinstance(event, h11.Response):
                    status = event.status_code
                elif isinstance(event, h11.Data):
                    body += event.data
                    if len(body) > MAX_BODY:
                        break
                elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                    break
    if not status:
        raise h11.RemoteProtocolError("no response")
    return status, body[: MAX_BODY + 1]


class Validator:
    def __init__(
        self,
        *,
        resolver: Resolver,
        http_port: int = 80,
        allow_private: bool = False,
        timeout: float = 10.0,
    ) -> None:
        self._port = http_port
        self._allow_private = allow_private
        self._timeout = timeout
        self._resolver = resolver
        self._attempted = self._passed = self._failed = 0

    @property
    def http_port(self) -> int:
        return self._port

    async def http01(self, name: str, token: str, key_auth: str) -> str | None:
        """None if http://NAME/.well-known/acme-challenge/TOKEN answers the key
        authorization; else what went wrong, for the problem's detail."""
        self._attempted += 1
        error = await self._http01(name, token, key_auth)
        self._count(error)
        return error

    async def _http01(self, name: str, token: str, key_auth: str) -> str | None:
        try:
            usable = await checked_addresses(
                self._resolver, name, allow_private=self._allow_private
            )
        except (DnsError, TargetRefused) as exc:
            return exc.message
        path = f"/.well-known/acme-challenge/{token}"
        last = ""
        for address in usable:
            try:
                status, body = await fetch_bounded(address, self._port, name, path, self._timeout)
            except (h11.ProtocolError, trio.TooSlowError, trio.BrokenResourceError, OSError) as exc:
                last = f"fetching {path} from {name} failed: {exc.__class__.__name__}"
                continue
            if status != 200:
                return f"{name} answered {status} for {path}"
            if body.strip() != key_auth.encode():
                return f"{name} answered the wrong key authorization for {path}"
            return None
        return last

    async def dns01(self, name: str, key_auth: str) -> str | None:
        """None if a TXT record at _acme-challenge.NAME holds the key authorization's
        digest; else what went wrong."""
        self._attempted += 1
        error = await self._dns01(name, key_auth)
        self._count(error)
        return error

    async def _dns01(self, name: str, key_auth: str) -> str | None:
        want = dns01_value(key_auth)
        label = f"_acme-challenge.{name}"
        try:
            values = await self._resolver.txt(label)
        except DnsError as exc:
            return exc.message
        if not values:
            return f"no TXT record at {label}"
        return None if want in values else f"no TXT record at {label} holds the expected value"

    def _count(self, error: str | None) -> None:
        if error is None:
            self._passed += 1
        else:
            self._failed += 1

    def statistics(self) -> ValidationStatistics:
        return ValidationStatistics(
            attempted=self._attempted, passed=self._passed, failed=self._failed
        )
