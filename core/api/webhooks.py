"""/v1/admin/accounts/{account}/webhook: an account's webhook over the admin API (PUT
sets it and answers the new signing secret, once; DELETE removes it)."""

from __future__ import annotations

from typing import Any

from core.api.router import Request, Route
from core.base.clock import Clock, to_epoch
from core.notify.webhooks import WebhookIn, set_webhook
from core.store import GroupCommitWriter, WriteTxn


def routes(
    writer: GroupCommitWriter, clock: Clock, *, master: bytes, allow_private: bool
) -> list[Route]:
    async def put(request: Request) -> tuple[int, Any]:
        account = request.params["account"]
        body = await request.json(WebhookIn)
        op = set_webhook(
            account,
            body.url,
            master=master,
            allow_private=allow_private,
            now=to_epoch(clock.now()),
            actor=request.principal.id,
        )
        return 200, await writer.submit(op)

    async def delete(request: Request) -> tuple[int, Any]:
        account = request.params["account"]
        at_us = clock.now_us()
        actor = request.principal.id

        def op(txn: WriteTxn) -> None:
            txn.remove_webhook(account, at_us=at_us, actor=actor)

        await writer.submit(op)
        return 200, {"account": account, "removed": True}

    path = "/v1/admin/accounts/{account}/webhook"
    return [Route("PUT", path, "admin", put), Route("DELETE", path, "admin", delete)]
