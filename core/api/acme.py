"""The ACME front end (Boulder's WFE) on the API listener: the directory, nonces, and
every POST checked before the registration authority sees it: a flattened JWS,
a nonce redeemed once, its `url` equal to the request's, `jwk` or `kid` as the
resource needs, the signature. Every answer carries a fresh Replay-Nonce; every error
is an RFC 7807 problem document, refusals of the HTTP layer (413 and the like) too.

Every URL it gives out is built from the configured external base URL, never from the
request's Host: a client cannot make the CA hand out URLs of its choosing."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from core.access.ratelimit import Buckets, retry_after
from core.acme import jws
from core.acme import messages as am
from core.acme.challenges import ChallengeRunner, challenge_problem
from core.acme.nonces import Nonces
from core.acme.problems import Problem
from core.acme.ra import RegistrationAuthority
from core.acme.states import check_contacts, expiry
from core.api.http_errors import RETRY_AFTER, HttpError
from core.api.router import Raw, Request, Route
from core.base.errors import (
    ClientError,
    CtUnavailable,
    HankoError,
    NotFound,
    PolicyError,
    SignerError,
    StoreError,
)
from core.store import AcmeAccountRecord, AcmeAuthzRecord, AcmeOrderRecord, EabRecord

_JSON = msgspec.json.Encoder()
_PROBLEM = b"application/problem+json"
_JOSE = b"application/jose+json"
KEY_CACHE = 100_000  # parsed account keys kept; starting again past it beats LRU upkeep
Handler = Callable[["Signed"], Awaitable[tuple[int, Any, list[tuple[bytes, bytes]]]]]


class Signed(msgspec.Struct, frozen=True, kw_only=True):
    """A verified ACME POST: the base URL, its params, the payload, and who sent it."""

    base: str
    params: dict[str, str]
    payload: bytes
    jwk: dict[str, Any] | None  # newAccount (and revokeCert by the certificate key)
    account: AcmeAccountRecord | None
    eab: EabRecord | None


def _header(request: Request, name: bytes) -> bytes:
    for key, value in request.scope["headers"]:
        if key == name:
            return bytes(value)
    return b""


# The problem type of a refusal made before a handler ran, by its HTTP status.
_HTTP_PROBLEMS = {401: "unauthorized", 403: "unauthorized", 429: "rateLimited"}


def problem_for(exc: HankoError) -> Problem:
    """The problem document of an error the RA or the engine raised, by its type: the
    service's faults are serverInternal (503, retryable, when the store or the signer
    is unavailable), never malformed, which tells a client not to try again."""
    if isinstance(exc, Problem):
        return exc
    if isinstance(exc, (StoreError, SignerError, CtUnavailable)):
        detail = f"the service is unavailable ({exc.code}); try again shortly"
        return Problem("serverInternal", detail, status=503, retry_after=int(RETRY_AFTER))
    if isinstance(exc, NotFound):
        return Problem("malformed", exc.message, status=404)
    if isinstance(exc, ClientError):
        return Problem("malformed", f"{exc.code}: {exc.message}")
    if isinstance(exc, PolicyError):
        return Problem("unauthorized", f"{exc.code}: {exc.message}")
    return Problem("serverInternal", "internal error")


class AcmeFrontEnd:
    def __init__(
        self,
        ra: RegistrationAuthority,
        nonces: Nonces,
        challenges: ChallengeRunner,
        *,
        base_url: str,
        account_rate: float = 0.0,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._ra = ra
        self._nonces = nonces
        self._challenges = challenges
        self._rate = account_rate
        self._buckets = Buckets()
        self._keys: dict[str, jws.PublicKey] = {}

    # -- answers --------------------------------------------------------------------

    def _headers(self, base: str, extra: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        return [
            (b"replay-nonce", self._nonces.issue(time.monotonic()).encode()),
            (b"link", f'<{base}/acme/directory>;rel="index"'.encode()),
            *extra,
        ]

    def _problem(self, base: str, exc: Problem) -> tuple[int, Raw]:
        body = _JSON.encode(exc.document())
        extra = [(b"retry-after", str(exc.retry_after).encode())] if exc.retry_after else []
        return exc.status, Raw(body, _PROBLEM, self._headers(base, extra))

    def render(self, error: HttpError) -> tuple[int, Raw]:
        """A refusal of the HTTP layer or the router (413, 404, 405, 408...) as a
        problem document with a fresh nonce."""
        kind = _HTTP_PROBLEMS.get(error.status, "malformed")
        if error.status >= 500:
            kind = "serverInternal"
        retry = 0
        for name, value in error.headers:
            if name == b"retry-after" and value.isdigit():
                retry = int(value)
        problem = Problem(kind, error.detail, status=error.status, retry_after=retry)
        return self._problem(self._base, problem)

    def _account_key(self, account: AcmeAccountRecord) -> jws.PublicKey:
        """The account's public key, parsed once per key (a key change has a new
        thumbprint, so the cache never serves a replaced key)."""
        key = self._keys.get(account.thumbprint)
        if key is None:
            if len(self._keys) >= KEY_CACHE:
                self._keys.clear()
            key = self._keys[account.thumbprint] = jws.public_key(msgspec.json.decode(account.jwk))
        return key

    def _throttle(self, account_id: str) -> None:
        """Each ACME account's requests, at most `rate` a second (a token bucket)."""
        if not self._rate:
            return
        wait = self._buckets.take(account_id, self._rate, time.monotonic())
        if wait:
            raise Problem(
                "rateLimited",
                f"this account is limited to {self._rate:g} requests a second",
                retry_after=retry_after(wait),
            )

    def routes(self) -> list[Route]:
        post = self._post
        render = self.render
        routes = [
            Route("GET", "/acme/directory", None, self.directory),
            Route("HEAD", "/acme/new-nonce", None, self.new_nonce),
            Route("GET", "/acme/new-nonce", None, self.new_nonce),
            Route("POST", "/acme/new-account", None, post(self.new_account, jwk=True)),
            Route("POST", "/acme/acct/{id}", None, post(self.update_account)),
            Route("POST", "/acme/acct/{id}/orders", None, post(self.orders)),
            Route("POST", "/acme/new-order", None, post(self.new_order)),
            Route("POST", "/acme/order/{id}", None, post(self.get_order)),
            Route("POST", "/acme/order/{id}/finalize", None, post(self.finalize)),
            Route("POST", "/acme/authz/{id}", None, post(self.get_authz)),
            Route("POST", "/acme/chall/{authz}/{type}", None, post(self.challenge)),
            Route("POST", "/acme/cert/{serial}", None, post(self.certificate)),
            Route("POST", "/acme/key-change", None, post(self.key_change)),
            Route("POST", "/acme/revoke-cert", None, post(self.revoke_cert, jwk=None)),
            Route("GET", "/acme/renewal-info/{id}", None, self.renewal_info),
        ]
        return [msgspec.structs.replace(r, render=render) for r in routes]

    async def directory(self, request: Request) -> tuple[int, Any]:
        base = self._base
        acme = f"{base}/acme"
        body = am.Directory(
            newNonce=f"{acme}/new-nonce",
            newAccount=f"{acme}/new-account",
            newOrder=f"{acme}/new-order",
            revokeCert=f"{acme}/revoke-cert",
            keyChange=f"{acme}/key-change",
            renewalInfo=f"{acme}/renewal-info",
            meta=am.Meta(externalAccountRequired=True, profiles=self._ra.profiles_offered()),
        )
        return 200, Raw(_JSON.encode(body))

    async def new_nonce(self, request: Request) -> tuple[int, Any]:
        status = 200 if request.scope["method"] == "HEAD" else 204
        return status, Raw(b"", b"application/octet-stream", self._headers(self._base, []))

    # -- the POST pipeline ----------------------------------------------------------

    def _post(
        self, handler: Handler, *, jwk: bool | None = False
    ) -> Callable[[Request], Awaitable[tuple[int, Any]]]:
        async def run(request: Request) -> tuple[int, Any]:
            base = self._base
            try:
                signed = await self._verify(request, base, jwk=jwk)
                status, body, extra = await handler(signed)
            except HankoError as exc:
                return self._problem(base, problem_for(exc))
            payload = body if isinstance(body, bytes) else _JSON.encode(body)
            content_type = (
                b"application/pem-certificate-chain"
                if isinstance(body, bytes)
                else b"application/json"
            )
            return status, Raw(payload, content_type, self._headers(base, extra))

        return run

    async def _verify(self, request: Request, base: str, *, jwk: bool | None) -> Signed:
        """`jwk`: True, signed with a jwk (newAccount); False, with an account's kid;
        None, either (revokeCert by the certificate's key or by an account)."""
        if not _header(request, b"content-type").startswith(_JOSE):
            raise Problem("malformed", "send Content-Type: application/jose+json", status=415)
        parsed = jws.parse(await request.body(limit=64 << 10))
        header = parsed.header
        if header.nonce is None or not self._nonces.redeem(header.nonce, time.monotonic()):
            raise Problem("badNonce", "the nonce is unknown, used or too old: use the new one")
        url = base + request.scope["path"]
        if header.url != url:
            raise Problem("unauthorized", f"the JWS url {header.url!r} is not this request's {url}")
        account = eab = None
        if jwk is None:
            jwk = header.jwk is not None
        if jwk:
            if header.jwk is None or header.kid is not None:
                raise Problem("malformed", "this request is signed with a jwk, not a kid")
            key = jws.public_key(header.jwk)
            key_jwk: dict[str, Any] | None = header.jwk
        else:
            if header.kid is None or header.jwk is not None:
                raise Problem("malformed", "this request is signed with the account's kid")
            prefix = f"{base}/acme/acct/"
            if not header.kid.startswith(prefix):
                raise Problem("accountDoesNotExist", f"{header.kid} is not an account URL here")
            account, eab = self._ra.account(header.kid[len(prefix) :])
            self._throttle(account.id)
            key_jwk = None
            key = self._account_key(account)
        jws.verify(key, header.alg, parsed.signing_input, parsed.signature)
        return Signed(
            base=base,
            params=request.params,
            payload=parsed.payload,
            jwk=key_jwk,
            account=account,
            eab=eab,
        )

    # -- resources ------------------------------------------------------------------

    @staticmethod
    def _decode(payload: bytes, typ: type[Any]) -> Any:
        try:
            return msgspec.json.decode(payload or b"{}", type=typ)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise Problem(
                "malformed", f"the payload is not a valid {typ.__name__}: {exc}"
            ) from None

    @staticmethod
    def _account_view(signed: Signed, acct: AcmeAccountRecord) -> am.Account:
        return am.Account(
            status=acct.status,
            contact=acct.contact,
            orders=f"{signed.base}/acme/acct/{acct.id}/orders",
        )

    async def new_account(self, signed: Signed) -> tuple[int, Any, list[tuple[bytes, bytes]]]:
        body: am.NewAccount = self._decode(signed.payload, am.NewAccount)
        assert signed.jwk is not None  # noqa: S101 - _verify demands it for newAccount
        acct, created = await self._ra.new_account(
            signed.jwk,
            url=f"{signed.base}/acme/new-account",
            only_existing=body.onlyReturnExisting,
            eab_raw=body.externalAccountBinding,
            contact=check_contacts(body.contact or []),
        )
        location = [(b"location", f"{signed.base}/acme/acct/{acct.id}".encode())]
        return (201 if created else 200), self._account_view(signed, acct), location

    def _own(self, signed: Signed) -> tuple[AcmeAccountRecord, EabRecord]:
        if signed.account is None or signed.eab is None:
            raise Problem("accountDoesNotExist", "no account signed this request")
        return signed.account, signed.eab

    async def update_account(self, signed: Signed) -> tuple[int, Any, list[tuple[bytes, bytes]]]:
        acct, _ = self._own(signed)
        if signed.params["id"] != acct.id:
            raise Problem("unauthorized", "an account may only change itself")
        if signed.payload:
            body: am.AccountUpdate = self._decode(signed.payload, am.AccountUpdate)
            if body.contact is not None or body.status is not None:
                contact = check_contacts(body.contact) if body.contact is not None else None
                acct = await self._ra.update_account(acct, contact=contact, status=body.status)
        return 200, self._account_view(signed, acct), []

    async def orders(self, signed: Signed) -> tuple[int, Any, list[tuple[bytes, bytes]]]:
        acct, _ = self._own(signed)
        if signed.params["id"] != acct.id:
            raise Problem("unauthorized", "an account may only list its own orders")
        ids = self._ra.orders(acct)
        return 200, {"orders": [f"{signed.base}/acme/order/{i}" for i in ids]}, []

    def _order_view(self, base: str, order: AcmeOrderRecord) -> am.Order:
        return am.Order(
            status=order.status,
            expires=expiry(order.expires),
            identifiers=[am.Identifier(type="dns", value=n) for n in order.names],
            authorizations=[f"{base}/acme/authz/{a}" for a in order.authz],
            finalize=f"{base}/acme/order/{order.id}/finalize",
            certificate=f"{base}/acme/cert/{order.serial.hex()}" if order.serial else None,
            # RFC 9773: the certificate identifier the client gave.
            replaces=self._ra.cert_id(order.replaces) if order.replaces else None,
            profile=order.profile or None,
        )

    async def new_order(self, signed: Signed) -> tuple[int, Any, list[tuple[bytes, bytes]]]:
        acct, eab = self._own(signed)
        body: am.NewOrder = self._decode(signed.payload, am.NewOrder)
        if body.notBefore is not None or body.notAfter is not None:
            # The profile and the schedule in force decide a certificate's validity.
            raise Problem("malformed", "notBefore and notAfter are not accepted here")
        order, _ = await self._ra.new_order(
            acct, eab, body.identifiers, replaces=body.replaces, profile=body.profile
        )
        location = [(b"location", f"{signed.base}/acme/order/{order.id}".encode())]
        return 201, self._order_view(signed.base, order), location

    async def get_order(self, signed: Signed) -> tuple[int, Any, list[tuple[bytes, bytes]]]:
        acct, _ = self._own(signed)
        order, _ = self._ra.order(acct, signed.params["id"])
        return 200, self._order_view(signed.base, order), []

    async def finalize(self, signed: Signed) -> tuple[int, Any, list[tuple[bytes, bytes]]]:
        acct, eab = self._own(signed)
        body: am.Finalize = self._decode(signed.payload, am.Finalize)
        order = await self._ra.finalize(
            acct,
            eab,
            signed.params["id"],
            body.csr,
            account_uri=f"{signed.base}/acme/acct/{acct.id}",
        )
        location = [(b"location", f"{signed.base}/acme/order/{order.id}".encode())]
        return 200, self._order_view(signed.base, order), location

    def _authz_view(self, base: str, authz: AcmeAuthzRecord) -> am.Authorization:
        return am.Authorization(
            identifier=am.Identifier(type="dns", value=authz.name),
            status=authz.status,
            expires=expiry(authz.expires),
            wildcard=authz.wildcard,
            challenges=[
                am.Challenge(
                    type=c.type,
                    url=f"{base}/acme/chall/{authz.id}/{c.type}",
                    status=c.status,
                    token=c.token,
                    validated=expiry(c.validated_at) if c.validated_at else None,
                    error=challenge_problem(authz.name, c).document() if c.error else None,
                    corroboration=c.corroboration or None,
                )
                for c in authz.challenges
            ],
        )

    async def get_authz(self, signed: Signed) -> tuple[int, Any, list[tuple[bytes, bytes]]]:
        acct, _ = self._own(signed)
        if signed.payload:
            body = self._decode(signed.payload, dict)
            if body != {"status": "deactivated"}:
                raise Problem("malformed", 'an authorization only takes {"status": "deactivated"}')
            authz = await self._ra.deactivate_authorization(acct, signed.params["id"])
            return 200, self._authz_view(signed.base, authz), []
        authz = self._ra.authorization(acct, signed.params["id"])
        return 200, self._authz_view(signed.base, authz), []

    async def challenge(self, signed: Signed) -> tuple[int, Any, list[tuple[bytes, bytes]]]:
        acct, eab = self._own(signed)
        authz = self._ra.authorization(acct, signed.params["authz"])
        kind = signed.params["type"]
        if signed.payload not in (b"", b"{}"):
            # POST-as-GET reads it; {} takes it up (RFC 8555 7.5.1).
            raise Problem("malformed", "a challenge is taken up with {}")
        if signed.payload == b"{}":
            account_uri = f"{signed.base}/acme/acct/{acct.id}"
            authz = await self._challenges.respond(acct, eab, authz, kind, account_uri=account_uri)
        for view in self._authz_view(signed.base, authz).challenges:
            if view.type == kind:
                up = [(b"link", f'<{signed.base}/acme/authz/{authz.id}>;rel="up"'.encode())]
                return 200, view, up
        raise Problem("malformed", f"no {kind} challenge here", status=404)

    async def certificate(self, signed: Signed) -> tuple[int, Any, list[tuple[bytes, bytes]]]:
        acct, eab = self._own(signed)
        pem = self._ra.certificate(acct, eab, signed.params["serial"])
        return 200, pem.encode(), []

    async def revoke_cert(self, signed: Signed) -> tuple[int, Any, list[tuple[bytes, bytes]]]:
        body: am.RevokeCert = self._decode(signed.payload, am.RevokeCert)
        der = jws.b64decode(body.certificate)
        if signed.jwk is not None:
            await self._ra.revoke(der, body.reason, account=None, key=jws.public_key(signed.jwk))
        else:
            await self._ra.revoke(der, body.reason, account=self._own(signed), key=None)
        return 200, b"", []

    async def renewal_info(self, request: Request) -> tuple[int, Any]:
        try:
            start, end = self._ra.renewal_info(request.params["id"])
        except HankoError as exc:
            return self._problem(self._base, problem_for(exc))
        body = am.RenewalInfo(suggestedWindow={"start": expiry(start), "end": expiry(end)})
        # Ask again in six hours (RFC 9773 4.3.1): windows move with revocations.
        return 200, Raw(_JSON.encode(body), headers=[(b"retry-after", b"21600")])

    async def key_change(self, signed: Signed) -> tuple[int, Any, list[tuple[bytes, bytes]]]:
        """RFC 8555 7.3.5: the payload is a JWS by the new key over {account, oldKey}."""
        acct, _ = self._own(signed)
        inner = jws.parse(signed.payload)
        header = inner.header
        if header.jwk is None or header.kid is not None or header.nonce is not None:
            raise Problem("malformed", "the inner JWS carries the new jwk, and no kid or nonce")
        if header.url != f"{signed.base}/acme/key-change":
            raise Problem("malformed", "the inner JWS url is not key-change's")
        jws.verify(jws.public_key(header.jwk), header.alg, inner.signing_input, inner.signature)
        body: am.KeyChange = self._decode(inner.payload, am.KeyChange)
        if body.account != f"{signed.base}/acme/acct/{acct.id}":
            raise Problem("malformed", "the inner payload names another account")
        if jws.thumbprint(body.oldKey) != acct.thumbprint:
            raise Problem("malformed", "oldKey is not the account's key")
        await self._ra.change_key(acct, header.jwk)
        return 200, self._account_view(signed, acct), []
