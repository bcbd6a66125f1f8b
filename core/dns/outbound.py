"""Outbound connections made on someone else's word (http-01 and website validation,
webhooks, CT logs): the host is resolved once, every address checked against the one
address policy (core/base/netaddr.py), and the connection made to an address that was
checked, never to the name again (a second resolution could answer otherwise: DNS
rebinding). A refusal says what was refused, never what the CA's resolver answered:
the CA's view of DNS is not for its clients to read.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass

import trio

from core.base.errors import HankoError
from core.base.netaddr import refusal
from core.dns.resolver import DnsError, Resolver

log = logging.getLogger("hanko.outbound")


class TargetRefused(HankoError):
    """No address of the target may be connected to."""

    code = "target_refused"


def _literal(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return None


async def checked_addresses(resolver: Resolver, host: str, *, allow_private: bool) -> list[str]:
    """The addresses of `host` a connection may go to, in the resolver's order.
    TargetRefused when there are none; DnsError when the lookup failed."""
    literal = _literal(host)
    if literal is not None:
        found = [literal]
    elif host == "localhost" or host.endswith(".localhost"):
        found = ["127.0.0.1"]
    else:
        found = await resolver.addresses(host)
    allowed = [a for a in found if refusal(a, allow_private=allow_private) is None]
    if allowed:
        return allowed
    if not found:
        raise TargetRefused(f"{host} has no address (no A or AAAA record)")
    log.info(
        "outbound target refused: %s",
        host,
        extra={
            "event": "outbound.refused",
            "host": host,
            "ranges": sorted({refusal(a, allow_private=allow_private) or "" for a in found}),
        },
    )
    raise TargetRefused(
        f"{host} has no address the CA may connect to (public unicast addresses only)"
    )


@dataclass(frozen=True)
class Outbound:
    """How one kind of outbound connection is made: through which resolver, and
    whether the lab switch lets private targets through."""

    resolver: Resolver
    allow_private: bool = False

    async def connect(self, host: str, port: int) -> trio.SocketStream:
        """A TCP connection to an address of `host` that the policy allows, tried in
        the resolver's order; OSError when none took it."""
        last: OSError | None = None
        for address in await checked_addresses(
            self.resolver, host, allow_private=self.allow_private
        ):
            try:
                return await trio.open_tcp_stream(address, port)
            except OSError as exc:
                last = exc
        raise last or OSError(f"cannot connect to {host}")


__all__ = ["DnsError", "Outbound", "TargetRefused", "checked_addresses"]
