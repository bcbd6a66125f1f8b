"""GET /v1/admin/certificates: `hanko certs search` over the admin API, a page at a
time (`next` is the `after` of the following page).

A search may walk many certificates (on LMDB, the whole table), so it runs in a
worker thread, at most two at once: the loop keeps serving issuance and status."""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

import trio

from core.api.router import Request, Route
from core.base.clock import Clock, to_epoch
from core.base.errors import ClientError
from core.store import Store
from core.store.search import CertQuery, page_json, parse_time, resolve_issuer

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
_TEXT = ("name", "organization", "account", "profile", "status", "key_type", "after")
_KNOWN = frozenset((*_TEXT, "issuer", "issued_after", "issued_before", "limit"))
_STATUSES = ("good", "revoked", "expired")


def query_from(raw: bytes, issuers: Mapping[str, bytes]) -> CertQuery:
    """The query a URL's query string asks; ClientError for an unknown or repeated
    parameter or a malformed value."""
    try:
        pairs = urllib.parse.parse_qsl(
            raw.decode("ascii"), keep_blank_values=True, strict_parsing=bool(raw)
        )
    except (UnicodeDecodeError, ValueError):
        raise ClientError("the query string is malformed", code="invalid_query") from None
    given: dict[str, str] = {}
    for key, value in pairs:
        if key not in _KNOWN:
            raise ClientError(f"unknown parameter {key!r}", code="invalid_query")
        if key in given:
            raise ClientError(f"parameter {key!r} given twice", code="invalid_query")
        given[key] = value
    status = given.get("status")
    if status is not None and status not in _STATUSES:
        raise ClientError("status must be good, revoked or expired", code="invalid_query")
    limit_text = given.get("limit", str(DEFAULT_LIMIT))
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_LIMIT:
        raise ClientError(f"limit must be from 1 to {MAX_LIMIT}", code="invalid_query")
    issuer = given.get("issuer")
    after, before = given.get("issued_after"), given.get("issued_before")
    return CertQuery(
        name=given.get("name"),
        organization=given.get("organization"),
        account=given.get("account"),
        profile=given.get("profile"),
        issuer=None if issuer is None else resolve_issuer(issuer, issuers),
        issued_after=None if after is None else parse_time(after, "issued_after"),
        issued_before=None if before is None else parse_time(before, "issued_before"),
        status=status,  # type: ignore[arg-type]
        key_type=given.get("key_type"),
        limit=int(limit_text),
        after=given.get("after"),
    ).checked()


def routes(store: Store, issuers: Callable[[], Mapping[str, bytes]], clock: Clock) -> list[Route]:
    limiter = trio.CapacityLimiter(2)

    async def search(request: Request) -> tuple[int, Any]:
        query = query_from(request.scope.get("query_string", b""), issuers())
        now = to_epoch(clock.now())
        page = await trio.to_thread.run_sync(store.search_certs, query, now, limiter=limiter)
        return 200, page_json(page)

    return [Route("GET", "/v1/admin/certificates", "admin", search)]
