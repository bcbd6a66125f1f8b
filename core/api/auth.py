"""Who is calling: the bearer credential of a request, checked against the store on
every request (a key revoked or expired is refused at once, on connections already
open too), its client-certificate binding, and its rate."""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from core.access.keys import secret_digest
from core.access.ratelimit import Buckets, retry_after
from core.access.roles import ROLES, Principal
from core.api.http_errors import HttpError
from core.base.clock import Clock, to_epoch
from core.store import Store

ADMIN_TOKEN_ID = "admin-token"  # noqa: S105 - the audit actor of the admin token, not a secret
ADMIN = Principal(id=ADMIN_TOKEN_ID, role="admin", accounts=None)
# The peer certificate (its SHA-256) of the connection a request came on, or None.
PeerLookup = Callable[[Mapping[str, Any]], bytes | None]


class AuthStatistics(msgspec.Struct, frozen=True):
    accepted: int
    unauthenticated: int
    expired: int
    wrong_certificate: int
    rate_limited: int


def _bearer(scope: Mapping[str, Any]) -> bytes:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = bytes(value).partition(b" ")
            if scheme.lower() == b"bearer" and token.strip():
                return token.strip()
            break
    raise HttpError(
        401,
        "unauthenticated",
        "send Authorization: Bearer <API key secret>",
        headers=[(b"www-authenticate", b"Bearer")],
    )


class Authenticator:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        admin_token: str,
        peer_certificate: PeerLookup | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._clock = clock
        self._monotonic = monotonic
        self._admin = admin_token.encode()
        self._peer = peer_certificate
        self._buckets = Buckets()
        self._accepted = self._unauthenticated = self._expired = 0
        self._wrong_cert = self._limited = 0

    def set_admin_token(self, token: str) -> None:
        """A rotated admin token (SIGHUP): the old one is refused from now on."""
        self._admin = token.encode()

    def principal(self, scope: Mapping[str, Any]) -> Principal:
        """The caller, or HttpError 401 (no or unknown credential), 403 (a key bound to
        another client certificate) or 429 (over its rate)."""
        token = _bearer(scope)
        if hmac.compare_digest(token, self._admin):
            self._accepted += 1
            return ADMIN
        with self._store.read() as txn:
            rec = txn.api_key_by_secret(secret_digest(token))
        if rec is None or rec.revoked_at or rec.role not in ROLES:
            self._unauthenticated += 1
            raise HttpError(401, "unauthenticated", "unknown or revoked API key")
        if rec.expires_at and to_epoch(self._clock.now()) >= rec.expires_at:
            self._expired += 1
            raise HttpError(401, "key_expired", f"API key {rec.id} has expired")
        if rec.client_cert_sha256:
            peer = self._peer(scope) if self._peer is not None else None
            if peer is None or not hmac.compare_digest(peer, rec.client_cert_sha256):
                self._wrong_cert += 1
                raise HttpError(
                    403,
                    "client_certificate_required",
                    f"API key {rec.id} is bound to a client certificate this connection lacks",
                )
        if rec.rate:
            wait = self._buckets.take(rec.id, rec.rate, self._monotonic())
            if wait:
                self._limited += 1
                raise HttpError(
                    429,
                    "rate_limited",
                    f"API key {rec.id} is limited to {rec.rate:g} requests a second",
                    headers=[(b"retry-after", str(retry_after(wait)).encode())],
                )
        self._accepted += 1
        return Principal(
            id=rec.id,
            role=rec.role,
            accounts=None if rec.all_accounts else frozenset(rec.accounts),
        )

    def statistics(self) -> AuthStatistics:
        return AuthStatistics(
            accepted=self._accepted,
            unauthenticated=self._unauthenticated,
            expired=self._expired,
            wrong_certificate=self._wrong_cert,
            rate_limited=self._limited,
        )
