"""The one DNS client: queries to the configured recursive resolver (`[dns] resolver`,
HOST:PORT; the system's when empty), with a total deadline per lookup and retries, on
trio through dnspython's async resolver. Nothing is cached here: every decision is
made on answers fetched for it.

A lookup failure (SERVFAIL, a timeout, no server answering) is a DnsError, which
callers must treat as failure, never as "no record": only NXDOMAIN and an empty
answer mean that nothing is there.
"""

from __future__ import annotations

import dns.asyncresolver
import dns.exception
import dns.resolver
import msgspec

from core.base.errors import HankoError


class DnsError(HankoError):
    """The resolver did not answer the question (SERVFAIL, timeout, refused)."""

    code = "dns_failed"


class DnsSettings(msgspec.Struct, frozen=True, kw_only=True):
    server: str = ""  # HOST:PORT; "" for the system's resolvers
    timeout: float = 5.0  # a whole lookup, retries included
    retries: int = 2


def split_server(server: str) -> tuple[str, int]:
    host, _, port = server.rpartition(":")
    return host.strip("[]"), int(port)


class Resolver:
    def __init__(self, settings: DnsSettings) -> None:
        self._settings = settings
        resolver = dns.asyncresolver.Resolver(configure=not settings.server)
        if settings.server:
            host, port = split_server(settings.server)
            resolver.nameservers = [host]
            resolver.port = port
        resolver.lifetime = settings.timeout
        resolver.timeout = settings.timeout / (settings.retries + 1)
        resolver.retry_servfail = False
        self._resolver = resolver

    @property
    def settings(self) -> DnsSettings:
        return self._settings

    async def records(self, name: str, rdtype: str) -> list[str]:
        """The records of `rdtype` at `name` as text ([] when the name or the type does
        not exist); DnsError when the lookup failed."""
        try:
            answer = await self._resolver.resolve(name, rdtype, search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except dns.exception.DNSException as exc:
            raise DnsError(f"DNS lookup of {rdtype} {name} failed ({type(exc).__name__})") from None
        return [r.to_text() for r in answer]

    async def addresses(self, name: str) -> list[str]:
        """A and AAAA of `name`."""
        return [*await self.records(name, "A"), *await self.records(name, "AAAA")]

    async def txt(self, name: str) -> list[str]:
        """TXT values at `name`, each record's strings joined."""
        try:
            answer = await self._resolver.resolve(name, "TXT", search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except dns.exception.DNSException as exc:
            raise DnsError(f"DNS lookup of TXT {name} failed ({type(exc).__name__})") from None
        return [b"".join(r.strings).decode(errors="replace") for r in answer]
