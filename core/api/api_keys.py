"""/v1/admin/keys: API keys made, listed and revoked over the admin API (as `hanko
keys` does on the command line). The secret is in the creation answer only."""

from __future__ import annotations

from typing import Any

from core.access import keys
from core.api.router import Request, Route
from core.base.clock import Clock, to_epoch
from core.base.errors import NotFound
from core.store import GroupCommitWriter, Store


def routes(store: Store, writer: GroupCommitWriter, clock: Clock) -> list[Route]:
    async def create(request: Request) -> tuple[int, Any]:
        body = await request.json(keys.KeyIn)
        op = keys.create(body, now=to_epoch(clock.now()), actor=request.principal.id)
        return 201, await writer.submit(op)

    async def list_keys(request: Request) -> tuple[int, Any]:
        with store.read() as txn:
            return 200, [keys.key_out(rec) for rec in txn.iter_api_keys()]

    async def get_key(request: Request) -> tuple[int, Any]:
        key_id = request.params["key"]
        with store.read() as txn:
            rec = txn.get_api_key(key_id)
        if rec is None:
            raise NotFound(f"no API key {key_id!r}")
        return 200, keys.key_out(rec)

    async def revoke(request: Request) -> tuple[int, Any]:
        op = keys.revoke(
            request.params["key"], now=to_epoch(clock.now()), actor=request.principal.id
        )
        return 200, await writer.submit(op)

    return [
        Route("POST", "/v1/admin/keys", "admin", create),
        Route("GET", "/v1/admin/keys", "admin", list_keys),
        Route("GET", "/v1/admin/keys/{key}", "admin", get_key),
        Route("POST", "/v1/admin/keys/{key}/revoke", "admin", revoke),
    ]
