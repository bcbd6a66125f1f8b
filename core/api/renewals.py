"""Scheduled renewals over the API: a portal lists and cancels its own (within its
key's accounts), the operator every one (/v1/admin/renewals)."""

from __future__ import annotations

from typing import Any

from core.api.router import Request, Route
from core.issuance.engine import IssuanceEngine
from core.issuance.scheduling import find, view
from core.store import Store


def routes(engine: IssuanceEngine, store: Store) -> list[Route]:
    async def listing(request: Request) -> tuple[int, Any]:
        accounts = request.principal.accounts
        with store.read() as txn:
            found = [
                view(r) for r in txn.iter_renewals() if accounts is None or r.account in accounts
            ]
        return 200, {"renewals": sorted(found, key=lambda v: (v.issue_at, v.id))}

    async def one(request: Request) -> tuple[int, Any]:
        with store.read() as txn:
            return 200, view(find(txn, request.params["id"], request.principal.accounts))

    async def cancel(request: Request) -> tuple[int, Any]:
        who = request.principal
        with store.read() as txn:
            rec = find(txn, request.params["id"], who.accounts)
        done = await engine.scheduling.settle(rec, "cancelled", actor=who.id, accounts=who.accounts)
        return 200, view(done)

    return [
        Route("GET", "/v1/renewals", "read", listing),
        Route("GET", "/v1/renewals/{id}", "read", one),
        Route("POST", "/v1/renewals/{id}/cancel", "issue", cancel),
        Route("GET", "/v1/admin/renewals", "admin", listing),
        Route("GET", "/v1/admin/renewals/{id}", "admin", one),
        Route("POST", "/v1/admin/renewals/{id}/cancel", "admin", cancel),
    ]
