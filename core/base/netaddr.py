"""Which addresses the service may connect to on someone else's word (ACME and website
validation, webhooks, CT logs): the one outbound address policy.

Public unicast addresses only. Refused: loopback, private (RFC 1918, ULA), shared
(CGNAT, RFC 6598), link-local, reserved and unspecified ranges, multicast, the
documentation and benchmarking ranges, and every IPv6 form that embeds or translates
an IPv4 address or reaches an old local scope (IPv4-mapped and -compatible, NAT64
well-known and local-use prefixes, 6to4, Teredo, site-local): behind a NAT64 gateway or
a 6to4 relay, those reach the CA's own network. `ipaddress.is_global` alone lets
several of them through (64:ff9b::/96, 2002::/16, fec0::/10).

A lab switch (`allow_private`) lets loopback and private targets through for tests and
private CAs; unspecified and multicast addresses stay refused even then.
"""

from __future__ import annotations

import ipaddress

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# (network, what it is): the reason a refusal names, never the address itself.
_REFUSED: tuple[tuple[Network, str], ...] = tuple(
    (ipaddress.ip_network(net), why)
    for net, why in (
        ("0.0.0.0/8", "unspecified"),
        ("10.0.0.0/8", "private"),
        ("100.64.0.0/10", "shared (CGNAT)"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local"),
        ("172.16.0.0/12", "private"),
        ("192.0.0.0/24", "IETF protocol assignments"),
        ("192.0.2.0/24", "documentation"),
        ("192.31.196.0/24", "AS112"),
        ("192.52.193.0/24", "AMT"),
        ("192.88.99.0/24", "6to4 relay anycast"),
        ("192.168.0.0/16", "private"),
        ("192.175.48.0/24", "AS112"),
        ("198.18.0.0/15", "benchmarking"),
        ("198.51.100.0/24", "documentation"),
        ("203.0.113.0/24", "documentation"),
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved"),
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("::ffff:0:0/96", "IPv4-mapped"),
        ("::/96", "IPv4-compatible"),
        ("64:ff9b::/96", "NAT64"),
        ("64:ff9b:1::/48", "NAT64 (local use)"),
        ("100::/64", "discard-only"),
        ("2001::/32", "Teredo"),
        ("2001:2::/48", "benchmarking"),
        ("2001:db8::/32", "documentation"),
        ("2001:10::/28", "ORCHID"),
        ("2001:20::/28", "ORCHIDv2"),
        ("2002::/16", "6to4"),
        ("3fff::/20", "documentation"),
        ("5f00::/16", "segment routing"),
        ("fc00::/7", "private (unique local)"),
        ("fe80::/10", "link-local"),
        ("fec0::/10", "site-local"),
        ("ff00::/8", "multicast"),
    )
)
_GLOBAL_UNICAST = ipaddress.ip_network("2000::/3")
# What the lab switch lets through.
_LAB = frozenset(("loopback", "private", "private (unique local)", "link-local", "shared (CGNAT)"))


def refusal(address: str, *, allow_private: bool = False) -> str | None:
    """Why a connection to `address` is refused (a kind of range, e.g. "NAT64"), or
    None when it may be made. A string that is no IP address is refused too."""
    try:
        ip = ipaddress.ip_address(address.strip("[]").split("%", 1)[0])
    except ValueError:
        return "not an IP address"
    for net, why in _REFUSED:
        if ip.version == net.version and ip in net:
            if allow_private and why in _LAB:
                return None
            return why
    if not ip.is_global:  # the IANA special-purpose registries, beyond the table
        return "not globally routable"
    if isinstance(ip, ipaddress.IPv6Address) and ip not in _GLOBAL_UNICAST:
        return "outside global unicast (2000::/3)"
    return None


def allowed_address(address: str, *, allow_private: bool) -> bool:
    return refusal(address, allow_private=allow_private) is None
