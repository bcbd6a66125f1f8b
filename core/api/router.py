"""The core's HTTP surface (hypercorn, trio worker): health, statistics, the signing
RPC, the admin API and the CRL files. A tiny ASGI router of our own: the surface is
small and every error must be a precise JSON answer, never an HTML 500.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import msgspec

from core.base.errors import Conflict, HankoError, NotFound, PolicyError, SignerError, StoreError
from crl.http import CrlFiles

T = TypeVar("T")
log = logging.getLogger("hanko.http")
Scope = Mapping[str, Any]
Receive = Callable[[], Awaitable[Mapping[str, Any]]]
Send = Callable[[Mapping[str, Any]], Awaitable[None]]
Handler = Callable[["Request"], Awaitable[tuple[int, Any]]]
MAX_BODY = 4 << 20  # a batch of 1000 CSRs fits; anything larger is refused with 413

_JSON = msgspec.json.Encoder()


def status_for(exc: HankoError) -> int:
    """The HTTP status of a HankoError: what the client can fix is 4xx, what it cannot
    (an overloaded or unavailable signer or store) is 503, never 500."""
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, Conflict):
        return 409
    if isinstance(exc, PolicyError):
        return 422
    if isinstance(exc, (SignerError, StoreError)):
        return 503
    return 400


class HttpError(Exception):
    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail


class Route(msgspec.Struct, frozen=True):
    method: str
    path: str  # segments in braces are parameters: /v1/certificates/{serial}
    role: str | None  # None: no token needed; else "rpc" or "admin"
    handler: Handler

    def match(self, path: str) -> dict[str, str] | None:
        want, got = self.path.split("/"), path.split("/")
        if len(want) != len(got):
            return None
        params = {}
        for w, g in zip(want, got, strict=True):
            if w.startswith("{") and w.endswith("}"):
                if not g:
                    return None
                params[w[1:-1]] = g
            elif w != g:
                return None
        return params


class Request:
    """What a handler sees: path parameters and a body read with a size limit."""

    def __init__(self, scope: Scope, receive: Receive, params: dict[str, str]) -> None:
        self.scope = scope
        self.params = params
        self._receive = receive

    async def body(self, limit: int = MAX_BODY) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                raise HttpError(400, "disconnected", "the client went away")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise HttpError(413, "body_too_large", f"the request body exceeds {limit} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def json(self, typ: type[T]) -> T:
        """The body decoded into `typ`: 400 for broken JSON, 422 for the wrong shape."""
        body = await self.body()
        try:
            return msgspec.json.decode(body, type=typ)
        except msgspec.ValidationError as exc:
            raise HttpError(422, "invalid_request", str(exc)) from None
        except msgspec.DecodeError as exc:
            raise HttpError(400, "invalid_json", f"the body is not valid JSON: {exc}") from None


class App:
    """Routes requests by exact method and path; checks the bearer token of the route's
    role in constant time; turns every failure into `{"error": CODE, "detail": TEXT}`."""

    def __init__(
        self, routes: list[Route], tokens: dict[str, str], *, crl_files: CrlFiles | None = None
    ) -> None:
        self._routes = routes
        self._tokens = {role: token.encode() for role, token in tokens.items()}
        self._crl_files = crl_files

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        if self._crl_files is not None and path.startswith("/crl/") and path.endswith(".crl"):
            await self._crl(self._crl_files, scope, send, path[len("/crl/") :])
            return
        try:
            route, params = self._find(scope["method"], scope["path"])
            if route.role is not None:
                self._authorize(scope, route.role)
            status, body = await route.handler(Request(scope, receive, params))
        except HttpError as exc:
            status, body = exc.status, {"error": exc.code, "detail": exc.detail}
        except HankoError as exc:
            status, body = status_for(exc), {"error": exc.code, "detail": exc.message}
        except Exception:
            # A bug, not the client's doing: log it whole, answer JSON without details.
            log.exception("unhandled error on %s %s", scope["method"], scope["path"])
            status, body = 500, {"error": "internal_error", "detail": "internal error (logged)"}
        await self._respond(send, status, body)

    async def _crl(self, files: CrlFiles, scope: Scope, send: Send, name: str) -> None:
        """CRL files stream their own answer; only a refusal is JSON."""
        if scope["method"] not in ("GET", "HEAD"):
            await self._respond(send, 405, {"error": "method_not_allowed", "detail": "GET or HEAD"})
            return
        try:
            if await files(scope, send, name):
                return
        except OSError:
            # Reading a published file failed mid-answer; the client sees a cut body.
            log.exception("serving CRL %s", name)
            return
        await self._respond(send, 404, {"error": "not_found", "detail": f"no CRL named {name}"})

    def _find(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        allowed = False
        for route in self._routes:
            params = route.match(path)
            if params is None:
                continue
            if route.method == method:
                return route, params
            allowed = True
        if allowed:
            raise HttpError(405, "method_not_allowed", f"{method} is not allowed here")
        raise HttpError(404, "not_found", f"no route for {path}")

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
