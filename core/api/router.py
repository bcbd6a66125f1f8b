"""The core's HTTP surface (served by core/api/http1_io.py): health, statistics, the
signing RPC and the admin API. A tiny ASGI router of our own: the surface is small and
every error must be a precise JSON answer (a problem document on ACME routes), never an
HTML 500.

A request is admitted from its head, before any body byte is read (`App.admit`): its
route, the caller's credentials and capability, and so the body limit the route takes
(the batch endpoint's large one only for callers that may issue). What the head alone
refuses is answered without reading the body.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol, TypeVar

import msgspec

from core.access.roles import Capability, Principal
from core.api.http_errors import HttpError, public_detail, public_fields, retryable, status_for
from core.base import logs
from core.base.errors import HankoError, NotFound

T = TypeVar("T")
log = logging.getLogger("hanko.http")
Scope = Mapping[str, Any]
Receive = Callable[[], Awaitable[Mapping[str, Any]]]
Send = Callable[[Mapping[str, Any]], Awaitable[None]]
Handler = Callable[["Request"], Awaitable[tuple[int, Any]]]
SMALL_BODY = 64 << 10  # every route's body limit but the batch endpoint's
BATCH_BODY = 4 << 20  # a batch of 1000 CSRs fits
ADMISSION = "hanko.admission"  # the scope key of what `admit` decided

_JSON = msgspec.json.Encoder()


class Authenticator(Protocol):
    def principal(self, scope: Mapping[str, Any]) -> Principal: ...

    def set_admin_token(self, token: str) -> None: ...


class Raw(msgspec.Struct, frozen=True):
    """An answer a handler shapes itself (ACME: its content types, Location, nonces)."""

    body: bytes
    content_type: bytes = b"application/json"
    headers: list[tuple[bytes, bytes]] = msgspec.field(default_factory=list)


# How a route's refusals are shaped (ACME: problem documents with a fresh nonce).
Renderer = Callable[[HttpError], "tuple[int, Raw]"]


class Route(msgspec.Struct, frozen=True):
    method: str
    path: str  # segments in braces are parameters: /v1/certificates/{serial}
    need: Capability | None  # None: public; else what the caller's role must allow
    handler: Handler
    max_body: int = SMALL_BODY
    render: Renderer | None = None

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
        limit: int = SMALL_BODY,
    ) -> None:
        self.scope = scope
        self.params = params
        self.principal = principal
        self._receive = receive
        self._limit = limit

    def check_account(self, account: str, what: str) -> None:
        """404 for what lies outside the caller's accounts: as if it did not exist."""
        if not self.principal.sees(account):
            raise NotFound(f"no {what}")

    async def body(self, limit: int | None = None) -> bytes:
        limit = self._limit if limit is None else min(limit, self._limit)
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


class Admitted(msgspec.Struct, frozen=True):
    """What `App.admit` decided from a head: the route and caller, or the refusal."""

    route: Route | None
    params: dict[str, str]
    principal: Principal
    refusal: HttpError | None = None

    @property
    def limit(self) -> int:
        return self.route.max_body if self.route is not None else 0


class App:
    """Routes requests by exact method and path; asks the authenticator who is calling
    and checks the route's capability; turns every failure into
    `{"error": CODE, "detail": TEXT}` (or the route's own shape). Every answer carries a
    request id (the client's X-Request-Id if it is a plain token, else a new one), which
    every log line of the request names; `observe` sees each request once answered
    (access log, metrics). `renderers` shape the refusals of paths under a prefix that
    no route matched (ACME's problem documents under /acme/)."""

    def __init__(
        self,
        routes: list[Route],
        auth: Authenticator | None,
        observe: Observer | None = None,
        renderers: dict[str, Renderer] | None = None,
    ) -> None:
        self._routes = routes
        self._auth = auth
        self._observe = observe
        self._renderers = renderers or {}
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

    def admit(self, scope: dict[str, Any]) -> Admitted:
        """Decide from the head alone: the route, the caller and its capability. The
        decision goes into the scope, and the call answers a refusal without reading
        a body."""
        decided = scope.get(ADMISSION)
        if isinstance(decided, Admitted):
            return decided
        route: Route | None = None
        params: dict[str, str] = {}
        principal = ANONYMOUS
        try:
            route, params = self._find(scope["method"], scope["path"])
            if route.need is not None:
                if self._auth is None:
                    raise HttpError(401, "unauthenticated", "no credentials are taken here")
                principal = self._auth.principal(scope)
                if not principal.can(route.need):
                    raise HttpError(
                        403, "forbidden", f"a {principal.role} key may not {route.need} here"
                    )
            decided = Admitted(route, params, principal)
        except HttpError as exc:
            decided = Admitted(route, params, principal, exc)
        except HankoError as exc:  # the store behind the credentials, unavailable
            decided = Admitted(route, params, principal, self._http_error(exc))
        scope[ADMISSION] = decided
        return decided

    @staticmethod
    def refuse(scope: dict[str, Any], error: HttpError) -> None:
        """A refusal the connection found after admission (413, 408): the call answers
        it in the route's shape."""
        decided = scope.get(ADMISSION)
        route = decided.route if isinstance(decided, Admitted) else None
        principal = decided.principal if isinstance(decided, Admitted) else ANONYMOUS
        scope[ADMISSION] = Admitted(route, {}, principal, error)

    def _http_error(self, exc: HankoError) -> HttpError:
        status = status_for(exc)
        if status == 500:  # a type nobody mapped: its words go to the log, not the client
            log.error(
                "%s: %s", exc.code, exc.message, extra={"event": "http.fault", "code": exc.code}
            )
        return HttpError(
            status,
            exc.code,
            public_detail(exc, status),
            headers=retryable(status),
            fields=public_fields(exc, status),
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.monotonic()
        request_id = self._request_id(scope)
        decided = self.admit(dict(scope)) if ADMISSION not in scope else scope[ADMISSION]
        with logs.bind(request_id=request_id):
            status = await self._handle(scope, receive, send, request_id, decided)
        if self._observe is not None:
            client = scope.get("client")
            principal = decided.principal
            self._observe(
                Answered(
                    method=scope["method"],
                    route=decided.route.path if decided.route is not None else "unmatched",
                    path=scope["path"][:256],
                    status=status,
                    seconds=time.monotonic() - started,
                    key_id=None if principal is ANONYMOUS else principal.id,
                    request_id=request_id,
                    client=None if client is None else str(client[0]),
                )
            )

    def _renderer(self, route: Route | None, path: str) -> Renderer | None:
        if route is not None and route.render is not None:
            return route.render
        for prefix, render in self._renderers.items():
            if path.startswith(prefix):
                return render
        return None

    async def _handle(
        self, scope: Scope, receive: Receive, send: Send, request_id: str, decided: Admitted
    ) -> int:
        extra: list[tuple[bytes, bytes]] = [(b"x-request-id", request_id.encode())]
        route = decided.route
        error = decided.refusal
        body: Any = None
        if error is None:
            assert route is not None  # noqa: S101 - admitted without a refusal
            request = Request(scope, receive, decided.params, decided.principal, route.max_body)
            try:
                with logs.bind(key_id=decided.principal.id):
                    status, body = await route.handler(request)
            except HttpError as exc:
                error = exc
            except HankoError as exc:
                error = self._http_error(exc)
            except Exception:
                # A bug, not the client's doing: logged whole, answered without details.
                log.exception("unhandled error on %s %s", scope["method"], route.path)
                error = HttpError(500, "internal_error", f"internal error (request {request_id})")
        if error is not None:
            status, body = self._error_body(error, route, scope["path"], request_id)
            extra += error.headers
            if error.status == 413 and (b"connection", b"close") not in extra:
                # A client sending more than a route takes gets no second request.
                extra.append((b"connection", b"close"))
        await self._respond(send, status, body, extra)
        return status

    def _error_body(
        self, error: HttpError, route: Route | None, path: str, request_id: str
    ) -> tuple[int, Any]:
        if error.status >= 500 and "request" not in error.detail:
            error = HttpError(
                error.status,
                error.code,
                f"{error.detail} (request {request_id})",
                headers=error.headers,
                fields=error.fields,
            )
        render = self._renderer(route, path)
        if render is not None:
            return render(error)
        return error.status, {"error": error.code, "detail": error.detail, **error.fields}

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
        raise HttpError(404, "not_found", "no route for this path")

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
