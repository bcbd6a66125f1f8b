"""What hanko looks up, by record type, through the one DNS client (core/dns/client.py):
the addresses of a host it connects to, TXT values (ACME dns-01, domain validation),
and CAA record sets (core/dns/caa_lookup.py climbs with them). Every answer says
whether the validating resolver authenticated it (AD)."""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Sequence

from core.dns import wire
from core.dns.caa import CaaRecord
from core.dns.client import DnsClient, DnsError, DnsSettings, split_server

__all__ = ["CaaAnswer", "DnsError", "DnsSettings", "Resolver", "split_server"]

CaaAnswer = tuple[tuple[CaaRecord, ...], bool]  # (records, authenticated)


@functools.lru_cache(maxsize=4096)
def _caa_record(rdata: bytes) -> CaaRecord:
    """Cached: most CAA record sets name the same few CAs."""
    return CaaRecord(*wire.caa_rdata(rdata))


class Resolver:
    def __init__(self, settings: DnsSettings) -> None:
        self._client = DnsClient(settings)

    @property
    def settings(self) -> DnsSettings:
        return self._client.settings

    @property
    def client(self) -> DnsClient:
        return self._client

    async def addresses(self, name: str) -> list[str]:
        """A and AAAA of `name` ([] when it has none); DnsError when a lookup failed."""
        found: list[str] = []
        replies = await self._client.ask_many([(name, wire.TYPES["A"]), (name, wire.TYPES["AAAA"])])
        for reply in replies:
            if isinstance(reply, DnsError):
                raise reply
            for rdata in reply.records:
                if len(rdata) in (4, 16):
                    found.append(str(ipaddress.ip_address(rdata)))
        return found

    async def txt(self, name: str) -> list[str]:
        """TXT values at `name`, each record's strings joined."""
        reply = await self._client.ask(name, wire.TYPES["TXT"])
        try:
            return [wire.txt_rdata(r) for r in reply.records]
        except wire.WireError as exc:
            raise DnsError(f"a TXT record at {name} does not parse: {exc}") from None

    async def caa_many(self, names: Sequence[str]) -> list[CaaAnswer | DnsError]:
        """The CAA records at each name (CNAMEs followed; () when none) and whether
        the answer was validated; DnsError for a failed lookup or a record that does
        not parse (never read as "no record")."""
        out: list[CaaAnswer | DnsError] = []
        replies = await self._client.ask_many([(n, wire.TYPES["CAA"]) for n in names])
        for name, reply in zip(names, replies, strict=True):
            if isinstance(reply, DnsError):
                out.append(reply)
                continue
            try:
                records = tuple(_caa_record(r) for r in reply.records)
            except wire.WireError as exc:
                out.append(DnsError(f"a CAA record at {name} does not parse: {exc}"))
                continue
            out.append((records, reply.authenticated))
        return out
