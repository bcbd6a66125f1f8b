"""Admin API routes for accounts and licenses (admin keys), and the read-only views of
an account for its own keys (/v1/accounts/...). Thin: decode, run the desk's op
through the group-commit writer or read a snapshot, encode."""

from __future__ import annotations

import urllib.parse
from typing import Any

from core.api.http_errors import HttpError
from core.api.router import Request, Route
from core.licenses import messages as lm
from core.licenses.desk import LicenseDesk
from core.store import GroupCommitWriter, Store

_ACCOUNT = "/v1/admin/accounts/{account}"
_OWN = "/v1/accounts/{account}"
_LICENSE = _ACCOUNT + "/licenses/{license}"


def _query_int(request: Request, name: str, default: int, *, high: int) -> int:
    query = urllib.parse.parse_qs(request.scope.get("query_string", b"").decode("latin-1"))
    values = query.get(name)
    if not values:
        return default
    raw = values[-1]
    if not raw.isdigit() or int(raw) > high:
        raise HttpError(422, "invalid_request", f"{name} must be an integer from 0 to {high}")
    return int(raw)


def routes(desk: LicenseDesk, store: Store, writer: GroupCommitWriter) -> list[Route]:
    async def create_account(request: Request) -> tuple[int, Any]:
        body = await request.json(lm.AccountIn)
        return 201, await writer.submit(desk.create_account(body, actor=request.principal.id))

    async def list_accounts(request: Request) -> tuple[int, Any]:
        with store.read() as txn:
            return 200, desk.accounts(txn)

    async def get_account(request: Request) -> tuple[int, Any]:
        request.check_account(request.params["account"], f"account {request.params['account']!r}")
        with store.read() as txn:
            return 200, desk.account_view(txn, request.params["account"])

    async def configure(request: Request) -> tuple[int, Any]:
        body = await request.json(lm.AccountSettingsIn)
        op = desk.configure(request.params["account"], body, actor=request.principal.id)
        return 200, await writer.submit(op)

    async def add_admin(request: Request) -> tuple[int, Any]:
        body = await request.json(lm.AdminIn)
        op = desk.add_admin(request.params["account"], body, actor=request.principal.id)
        return 201, await writer.submit(op)

    async def remove_admin(request: Request) -> tuple[int, Any]:
        p = request.params
        return 200, await writer.submit(
            desk.remove_admin(p["account"], p["email"], actor=request.principal.id)
        )

    async def buy(request: Request) -> tuple[int, Any]:
        body = await request.json(lm.LicenseIn)
        return 201, await writer.submit(
            desk.buy(request.params["account"], body, actor=request.principal.id)
        )

    async def get_license(request: Request) -> tuple[int, Any]:
        with store.read() as txn:
            return 200, desk.license(txn, request.params["account"], request.params["license"])

    async def add(request: Request) -> tuple[int, Any]:
        body = await request.json(lm.LicenseAddIn)
        p = request.params
        return 200, await writer.submit(
            desk.add(p["account"], p["license"], body, actor=request.principal.id)
        )

    async def renew(request: Request) -> tuple[int, Any]:
        body = await request.json(lm.LicenseRenewIn)
        p = request.params
        op = desk.renew(p["account"], p["license"], body, actor=request.principal.id)
        return 200, await writer.submit(op)

    async def add_domain(request: Request) -> tuple[int, Any]:
        body = await request.json(lm.LicenseDomainIn)
        p = request.params
        op = desk.add_domain(p["account"], p["license"], body, actor=request.principal.id)
        return 201, await writer.submit(op)

    async def inventory(request: Request) -> tuple[int, Any]:
        request.check_account(request.params["account"], f"account {request.params['account']!r}")
        with store.read() as txn:
            return 200, desk.inventory(txn, request.params["account"])

    async def ledger(request: Request) -> tuple[int, Any]:
        since = _query_int(request, "since", 0, high=2**62)
        limit = _query_int(request, "limit", 1000, high=10_000)
        with store.read() as txn:
            return 200, desk.ledger(txn, request.params["account"], since=since, limit=limit)

    async def certificates(request: Request) -> tuple[int, Any]:
        request.check_account(request.params["account"], f"account {request.params['account']!r}")
        with store.read() as txn:
            return 200, desk.certificates(txn, request.params["account"])

    async def check(request: Request) -> tuple[int, Any]:
        with store.read() as txn:
            return 200, desk.check(txn)

    return [
        Route("POST", "/v1/admin/accounts", "admin", create_account),
        Route("GET", "/v1/admin/accounts", "admin", list_accounts),
        Route("GET", _ACCOUNT, "admin", get_account),
        Route("POST", _ACCOUNT + "/settings", "admin", configure),
        Route("POST", _ACCOUNT + "/administrators", "admin", add_admin),
        Route("DELETE", _ACCOUNT + "/administrators/{email}", "admin", remove_admin),
        Route("POST", _ACCOUNT + "/licenses", "admin", buy),
        Route("GET", _LICENSE, "admin", get_license),
        Route("POST", _LICENSE + "/add", "admin", add),
        Route("POST", _LICENSE + "/renew", "admin", renew),
        Route("POST", _LICENSE + "/domains", "admin", add_domain),
        Route("GET", _ACCOUNT + "/inventory", "admin", inventory),
        Route("GET", _ACCOUNT + "/ledger", "admin", ledger),
        Route("GET", _ACCOUNT + "/certificates", "admin", certificates),
        Route("GET", "/v1/admin/licenses/check", "admin", check),
        # An account's own keys (issuer, reader) see its licences and certificates.
        Route("GET", _OWN, "read", get_account),
        Route("GET", _OWN + "/inventory", "read", inventory),
        Route("GET", _OWN + "/certificates", "read", certificates),
    ]
