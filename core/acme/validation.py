"""Challenge validation (RFC 8555 8.3, 8.4): a real HTTP fetch of the token for
http-01, a real TXT lookup for dns-01, through the configured resolver.

The validator never connects to loopback, private, link-local or otherwise special
addresses unless told to (`[acme] allow_private_targets`, for tests): a name that
resolves there could make the CA probe its own network. Redirects are not followed.
Every lookup and fetch has a deadline.
"""

from __future__ import annotations

import hashlib

import dns.asyncresolver
import dns.exception
import dns.resolver
import httpx
import msgspec
import trio

from core.acme.jws import b64encode
from core.base.netaddr import allowed_address

MAX_BODY = 512  # a key authorization is about 130 bytes


class ValidationStatistics(msgspec.Struct, frozen=True):
    attempted: int
    passed: int
    failed: int


def key_authorization(token: str, thumbprint: str) -> str:
    return f"{token}.{thumbprint}"


def dns01_value(key_auth: str) -> str:
    return b64encode(hashlib.sha256(key_auth.encode()).digest())


class Validator:
    def __init__(
        self,
        *,
        http_port: int = 80,
        resolver: str | None = None,
        allow_private: bool = False,
        timeout: float = 10.0,
    ) -> None:
        self._port = http_port
        self._allow_private = allow_private
        self._timeout = timeout
        self._resolver = dns.asyncresolver.Resolver(configure=resolver is None)
        if resolver is not None:
            host, _, port = resolver.rpartition(":")
            self._resolver.nameservers = [host.strip("[]")]
            self._resolver.port = int(port)
        self._resolver.lifetime = timeout
        self._attempted = self._passed = self._failed = 0

    async def _addresses(self, name: str) -> list[str]:
        found: list[str] = []
        for rdtype in ("A", "AAAA"):
            try:
                answer = await self._resolver.resolve(name, rdtype)
            except (dns.resolver.NoAnswer, dns.resolver.NXDOMAIN):
                continue
            found += [r.to_text() for r in answer]
        return found

    async def http01(self, name: str, token: str, key_auth: str) -> str | None:
        """None if http://NAME/.well-known/acme-challenge/TOKEN answers the key
        authorization; else what went wrong, for the problem's detail."""
        self._attempted += 1
        error = await self._http01(name, token, key_auth)
        self._count(error)
        return error

    async def _http01(self, name: str, token: str, key_auth: str) -> str | None:
        try:
            addresses = await self._addresses(name)
        except dns.exception.DNSException as exc:
            return f"DNS lookup of {name} failed: {exc}"
        usable = [a for a in addresses if allowed_address(a, allow_private=self._allow_private)]
        if not usable:
            return f"{name} has no public address to fetch from ({', '.join(addresses) or 'none'})"
        path = f"/.well-known/acme-challenge/{token}"
        last = ""
        for address in usable:
            host = f"[{address}]" if ":" in address else address
            try:
                with trio.fail_after(self._timeout):
                    async with httpx.AsyncClient(timeout=self._timeout) as client:
                        r = await client.get(
                            f"http://{host}:{self._port}{path}",
                            headers={"Host": name},
                            follow_redirects=False,
                        )
            except (httpx.HTTPError, trio.TooSlowError, OSError) as exc:
                last = f"fetching {path} from {address} failed: {exc.__class__.__name__}"
                continue
            if r.status_code != 200:
                return f"{address} answered {r.status_code} for {path}"
            if r.content[:MAX_BODY].strip() != key_auth.encode():
                return f"{address} answered the wrong key authorization for {path}"
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
            answer = await self._resolver.resolve(label, "TXT")
        except (dns.resolver.NoAnswer, dns.resolver.NXDOMAIN):
            return f"no TXT record at {label}"
        except dns.exception.DNSException as exc:
            return f"DNS lookup of {label} failed: {exc}"
        values = {b"".join(r.strings).decode(errors="replace") for r in answer}
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
