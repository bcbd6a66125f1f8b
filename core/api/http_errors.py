"""How the API answers what goes wrong: the error a handler raises to answer with a
status of its choosing, and the status of every other error by its type.

Errors are internal by default (Boulder's rule): a HankoError of a type not listed
here is a fault of the service, answered 500 with the request id and nothing of its
text, which goes to the log only. What the client can fix is 4xx; what it cannot,
but may retry (the store or the signer unavailable), is 503 with Retry-After.
"""

from __future__ import annotations

from core.base.errors import (
    ClientError,
    Conflict,
    CorroborationUnavailable,
    CtUnavailable,
    HankoError,
    NotFound,
    PolicyError,
    SignerError,
    StoreError,
    Unavailable,
)

RETRY_AFTER = b"5"  # seconds, on 503: a group commit or a signer restart takes less


class HttpError(Exception):
    """An answer with this status, code and detail (the router's JSON, or a problem
    document on ACME routes)."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        headers: list[tuple[bytes, bytes]] | None = None,
        fields: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers or []
        self.fields = fields or {}  # machine-readable facts beside code and detail


def status_for(exc: HankoError) -> int:
    """The HTTP status of a HankoError; 500 for a type nobody mapped."""
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, Conflict):
        return 409
    if isinstance(exc, PolicyError):
        return 422
    if isinstance(exc, ClientError):
        return 400
    if isinstance(exc, (SignerError, StoreError, CtUnavailable, Unavailable)):
        return 503
    return 500


def retryable(status: int) -> list[tuple[bytes, bytes]]:
    """Retry-After on a 503."""
    return [(b"retry-after", RETRY_AFTER)] if status == 503 else []


def public_detail(exc: HankoError, status: int) -> str:
    """What a client is told of `exc`: its message when it is the client's to fix, a
    generic sentence when it is the service's (the store's or signer's messages can
    name hosts, ports, paths and classes)."""
    if status < 500 or exc.public_message:
        return exc.message
    if status == 503:
        return f"the service is unavailable ({exc.code}); try again shortly"
    return "internal error"


def public_fields(exc: HankoError, status: int) -> dict[str, str]:
    """The machine-readable facts a client is given beside the detail: those of its
    own errors, and the precertificate's serial of a CT failure (it stays revocable)."""
    if status < 500 or isinstance(exc, (CtUnavailable, CorroborationUnavailable)):
        return exc.fields()
    return {}
