"""The core's HTTP surface (hypercorn, trio worker): health, statistics, and the routes
later issues add (signing RPC, admin API, CRL files). A tiny ASGI router of our own: the
surface is small and every error must be a precise JSON answer, never an HTML 500.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import msgspec

Scope = Mapping[str, Any]
Receive = Callable[[], Awaitable[Mapping[str, Any]]]
Send = Callable[[Mapping[str, Any]], Awaitable[None]]
Handler = Callable[[Scope, Receive], Awaitable[tuple[int, Any]]]

_JSON = msgspec.json.Encoder()


class HttpError(Exception):
    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail


class Route(msgspec.Struct, frozen=True):
    method: str
    path: str
    role: str | None  # None: no token needed; else "rpc" or "admin"
    handler: Handler


class App:
    """Routes requests by exact method and path; checks the bearer token of the route's
    role in constant time; turns every failure into `{"error": CODE, "detail": TEXT}`."""

    def __init__(self, routes: list[Route], tokens: dict[str, str]) -> None:
        self._routes = {(r.method, r.path): r for r in routes}
        self._paths = {r.path for r in routes}
        self._tokens = {role: token.encode() for role, token in tokens.items()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        try:
            route = self._routes.get((scope["method"], scope["path"]))
            if route is None:
                if scope["path"] in self._paths:
                    raise HttpError(
                        405, "method_not_allowed", f"{scope['method']} is not allowed here"
                    )
                raise HttpError(404, "not_found", f"no route for {scope['path']}")
            if route.role is not None:
                self._authorize(scope, route.role)
            status, body = await route.handler(scope, receive)
        except HttpError as exc:
            status, body = exc.status, {"error": exc.code, "detail": exc.detail}
        await self._respond(send, status, body)

    def _authorize(self, scope: Scope, role: str) -> None:
        header = b""
        for name, value in scope["headers"]:
            if name == b"authorization":
                header = value
                break
        scheme, _, token = header.partition(b" ")
        if scheme.lower() != b"bearer" or not token:
            raise HttpError(401, "unauthenticated", "send Authorization: Bearer <token>")
        expected = self._tokens.get(role)
        if expected is None or not hmac.compare_digest(token.strip(), expected):
            # A valid token of another role is refused the same way: roles never mix.
            raise HttpError(403, "forbidden", f"this endpoint needs the {role} token")

    async def _respond(self, send: Send, status: int, body: Any) -> None:
        payload = _JSON.encode(body)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                    (b"cache-control", b"no-store"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
