"""/v1/acme/eab: External Account Binding credentials over the API, for admins and for
issuer keys of the credential's account (a portal makes them for its customers). The
HMAC key is in the creation answer only."""

from __future__ import annotations

from typing import Any

from core.acme import eab
from core.api.router import Request, Route
from core.base.clock import Clock, to_epoch
from core.base.errors import NotFound
from core.store import GroupCommitWriter, Store


def routes(
    store: Store,
    writer: GroupCommitWriter,
    clock: Clock,
    *,
    master: bytes,
    profiles: frozenset[str],
) -> list[Route]:
    async def create(request: Request) -> tuple[int, Any]:
        body = await request.json(eab.EabIn)
        request.check_account(body.account, f"account {body.account!r}")
        host = next((v for k, v in request.scope["headers"] if k == b"host"), b"localhost")
        directory = f"https://{bytes(host).decode('latin-1')}/acme/directory"
        op = eab.create(
            body,
            master=master,
            profiles=profiles,
            directory=directory,
            now=to_epoch(clock.now()),
            actor=request.principal.id,
        )
        return 201, await writer.submit(op)

    async def list_eab(request: Request) -> tuple[int, Any]:
        who = request.principal
        with store.read() as txn:
            return 200, [eab.eab_out(r) for r in txn.iter_eab() if who.sees(r.account)]

    async def revoke(request: Request) -> tuple[int, Any]:
        kid = request.params["kid"]
        with store.read() as txn:
            rec = txn.get_eab(kid)
        if rec is None or not request.principal.sees(rec.account):
            raise NotFound(f"no EAB credential {kid!r}")
        op = eab.revoke(kid, now=to_epoch(clock.now()), actor=request.principal.id)
        return 200, await writer.submit(op)

    return [
        Route("POST", "/v1/acme/eab", "eab", create),
        Route("GET", "/v1/acme/eab", "eab", list_eab),
        Route("POST", "/v1/acme/eab/{kid}/revoke", "eab", revoke),
    ]
