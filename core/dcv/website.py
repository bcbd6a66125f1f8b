"""The website edge of website-change: GET the validation file, follow redirects only
where core/dcv/methods.py's `next_hop` allows, each host resolved through the CA's
resolver and connected to an address the outbound policy allows (never a private or
reserved one unless the lab switch is set), bodies bounded, the whole check under one
deadline. HTTPS targets of a redirect are fetched without checking their certificate:
what proves control is the file's content, as for ACME http-01."""

from __future__ import annotations

import functools
import ssl
from urllib.parse import urlsplit

import httpx
import trio

from core.dcv.methods import AUTHORIZED_PORTS, Fetched, next_hop
from core.dns.outbound import TargetRefused, checked_addresses
from core.dns.resolver import DnsError, Resolver

MAX_BODY = 16 * 1024  # the file holds a random value; a page is not read past this


async def fetch_file(
    resolver: Resolver,
    url: str,
    *,
    timeout: float,
    allow_private: bool,
    ports: frozenset[int] = AUTHORIZED_PORTS,
) -> Fetched:
    hops: list[tuple[str, int]] = []
    current: str | None = url
    try:
        with trio.fail_after(timeout):
            while current is not None:
                status, location, body = await _get(resolver, current, timeout, allow_private)
                hops.append((current, status))
                following, refused = next_hop(current, status, location, len(hops) - 1, ports)
                if refused:
                    return Fetched(tuple(hops), error=refused)
                if following is None:
                    return Fetched(tuple(hops), body=body)
                current = following
    except trio.TooSlowError:
        return Fetched(tuple(hops), error=f"fetching {url} took longer than {timeout:g} s")
    except (DnsError, TargetRefused) as exc:
        return Fetched(tuple(hops), error=exc.message)
    return Fetched(tuple(hops), error="no response")


async def _get(
    resolver: Resolver, url: str, timeout: float, allow_private: bool
) -> tuple[int, str | None, bytes]:
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    last = f"no address of {host} answered"
    for address in await checked_addresses(resolver, host, allow_private=allow_private):
        literal = f"[{address}]" if ":" in address else address
        try:
            return await _request(f"{parts.scheme}://{literal}:{port}{path}", host, timeout)
        except (httpx.HTTPError, OSError) as exc:
            last = f"fetching {url} failed: {exc.__class__.__name__}"
    raise TargetRefused(last)


@functools.cache
def _unverified() -> ssl.SSLContext:
    """One context for every fetch (making one per fetch costs milliseconds of CPU)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


async def _request(target: str, host: str, timeout: float) -> tuple[int, str | None, bytes]:
    async with (
        httpx.AsyncClient(timeout=timeout, verify=_unverified()) as client,
        client.stream(
            "GET",
            target,
            headers={"Host": host, "User-Agent": "hanko-dcv"},
            follow_redirects=False,
            extensions={"sni_hostname": host},
        ) as r,
    ):
        body = b""
        async for chunk in r.aiter_raw():
            body += chunk
            if len(body) > MAX_BODY:
                break
        return r.status_code, r.headers.get("location"), body[:MAX_BODY]
