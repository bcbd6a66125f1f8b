"""The core's HTTP surface (served by core/api/http1.py): health, statistics, the signing
RPC and the admin API. A tiny ASGI router of our own: the surface is small and every
error must be a precise JSON answer, never an HTML 500.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec

from core.access.roles import Capability, Principal
from core.base import logs
from core.base.errors import (
    Conflict,
    CtUnavailable,
    HankoError,
    NotFound,
    PolicyError,
    SignerError,
    StoreError,
)

if TYPE_CHECKING:
    from core.api.auth import Authenticator

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
    if isinstance(exc, (SignerError, StoreError, CtUnavailable)):
        return 503
    return 400


class HttpError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers or []


class Raw(msgspec.Struct, frozen=True):
    """An answer a handler shapes itself (ACME: its content types, Location, nonces)."""

    body: bytes
    content_type: bytes = b"application/json"
    headers: list[tuple[bytes, bytes]] = msgspec.field(default_factory=list)


class Route(msgspec.Struct, frozen=True):
    method: str
    path: str  # segments in braces are parameters: /v1/certificates/{serial}
    need: Capability | None  # None: public; else what the caller's role must allow
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


ANONYMOUS = Principal(id="anonymous", role="reader", accounts=frozenset())


def _unique_keys(pairs: list[tuple[str, Any]]) -> None:
    if len(pairs) == len({key for key, _ in pairs}):
        return
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise HttpError(400, "duplicate_key", f"the JSON object has the key {key!r} twice")
        seen.add(key)


def _refuse_duplicate_keys(body: bytes) -> None:
    """msgspec keeps the last of two equal keys; a CA must not guess which one a client
    meant. The standard parser reports every object's pairs (only when msgspec has
    already accepted the body, so it never sees malformed JSON)."""
    json.loads(body, object_pairs_hook=_unique_keys)


class Request:
    """What a handler sees: path parameters, who is asking, and a body read with a size
    limit (the listener, core/api/http1.py, holds it to its deadline)."""

    def __init__(
        self,
        scope: Scope,
        receive: Receive,
        params: dict[str, str],
        principal: Principal = ANONYMOUS,
    ) -> None:
        self.scope = scope
        self.params = params
        self.principal = principal
        self._receive = receive

    def check_account(self, account: str, what: str) -> None:
        """404 for what lies outside the caller's accounts: as if it did not exist."""
        if not self.principal.sees(account):
            raise NotFound(f"no {what}")

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
        """The body decoded into `typ`: 400 for broken JSON or a key given twice, 422
        for the wrong shape."""
        body = await self.body()
        try:
            value = msgspec.json.decode(body, type=typ)
        except msgspec.ValidationError as exc:
            raise HttpError(422, "invalid_request", str(exc)) from None
        except msgspec.DecodeError as exc:
            raise HttpError(400, "invalid_json", f"the body is not valid JSON: {exc}") from None
        _refuse_duplicate_keys(body)
        return value


class Answered(msgspec.Struct, frozen=True):
    """One request as the access log and the metrics see it."""

    method: str
    route: str  # the route's path template ("unmatched" for a 404 without a route)
    path: str  # the path as asked (it names the serial, the account...)
    status: int
    seconds: float
    key_id: str | None
    request_id: str
    client: str | None


Observer = Callable[[Answered], None]
_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,64}$")


class App:
    """Routes requests by exact method and path; asks the authenticator who is calling
    and checks the route's capability; turns every failure into
    `{"error": CODE, "detail": TEXT}`. Every answer carries a request id (the client's
    X-Request-Id if it is a plain token, else a new one), which every log line of the
    request names; `observe` sees each request once answered (access log, metrics)."""

    def __init__(
        self, routes: list[Route], auth: Authenticator | None, observe: Observer | None = None
    ) -> None:
        self._routes = routes
        self._auth = auth
        self._observe = observe
        self._ids = itertools.count(1)
        self._id_prefix = secrets.token_hex(3)

    @property
    def authenticator(self) -> Authenticator | None:
        return self._auth

    def _request_id(self, scope: Scope) -> str:
        for name, value in scope["headers"]:
            if name == b"x-request-id" and _REQUEST_ID.match(value):
                return str(value.decode("ascii"))
        return f"{self._id_prefix}-{next(self._ids):x}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.monotonic()
        request_id = self._request_id(scope)
        # The route's template and the caller, as far as the request got.
        seen: list[Any] = ["unmatched", ANONYMOUS]
        with logs.bind(request_id=request_id):
            status = await self._handle(scope, receive, send, request_id, seen)
        template, principal = seen
        if self._observe is not None:
            client = scope.get("client")
            self._observe(
                Answered(
                    method=scope["method"],
                    route=template,
                    path=scope["path"][:256],
                    status=status,
                    seconds=time.monotonic() - started,
                    key_id=None if principal is ANONYMOUS else principal.id,
                    request_id=request_id,
                    client=None if client is None else str(client[0]),
                )
            )

    async def _handle(
        self, scope: Scope, receive: Receive, send: Send, request_id: str, seen: list[Any]
    ) -> int:
        extra: list[tuple[bytes, bytes]] = [(b"x-request-id", request_id.encode())]
        try:
            route, params = self._find(scope["method"], scope["path"])
            seen[:] = [route.path, ANONYMOUS]
            principal = ANONYMOUS
            if route.need is not None:
                if self._auth is None:
                    raise HttpError(401, "unauthenticated", "no credentials are taken here")
                principal = self._auth.principal(scope)
                seen[1] = principal
                if not principal.can(route.need):
                    raise HttpError(
                        403, "forbidden", f"a {principal.role} key may not {route.need} here"
                    )
            request = Request(scope, receive, params, principal)
            with logs.bind(key_id=principal.id):
                status, body = await route.handler(request)
        except HttpError as exc:
            status, body = exc.status, {"error": exc.code, "detail": exc.detail}
            extra += exc.headers
            if exc.status == 413 and (b"connection", b"close") not in extra:
                # A client sending more than a route takes gets no second request.
                extra.append((b"connection", b"close"))
        except HankoError as exc:
            status = status_for(exc)
            body = {"error": exc.code, "detail": exc.message, **exc.fields()}
        except Exception:
            # A bug, not the client's doing: log it whole, answer JSON without details.
            log.exception("unhandled error on %s %s", scope["method"], scope["path"])
            status, body = 500, {"error": "internal_error", "detail": "internal error (logged)"}
        await self._respond(send, status, body, extra)
        return status

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

    async def _respond(
        self, send: Send, status: int, body: Any, extra: list[tuple[bytes, bytes]]
    ) -> None:
        content_type = b"application/json"
        if isinstance(body, Raw):
            payload, content_type = body.body, body.content_type
            extra = [*extra, *body.headers]
        else:
            payload = _JSON.encode(body)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", content_type),
                    (b"content-length", str(len(payload)).encode()),
                    (b"cache-control", b"no-store"),
                    *extra,
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})
