"""ACME errors as RFC 7807 problem documents (RFC 8555 6.7): one exception, its type
and the HTTP status it is answered with."""

from __future__ import annotations

from typing import Any

from core.base.errors import HankoError

NS = "urn:ietf:params:acme:error:"

_STATUS = {
    "accountDoesNotExist": 400,
    "alreadyRevoked": 400,
    "badCSR": 400,
    "badNonce": 400,
    "badPublicKey": 400,
    "badRevocationReason": 400,
    "badSignatureAlgorithm": 400,
    "caa": 403,
    "compound": 403,
    "connection": 400,
    "dns": 400,
    "externalAccountRequired": 401,
    "incorrectResponse": 403,
    "invalidContact": 400,
    "invalidProfile": 400,  # draft-ietf-acme-profiles
    "malformed": 400,
    "orderNotReady": 403,
    "rateLimited": 429,
    "rejectedIdentifier": 400,
    "serverInternal": 500,
    "tls": 400,
    "unauthorized": 403,
    "unsupportedContact": 400,
    "unsupportedIdentifier": 400,
    "userActionRequired": 403,
}


class Problem(HankoError):
    """An ACME error: `kind` is the ACME error type without its namespace."""

    def __init__(
        self,
        kind: str,
        detail: str,
        *,
        status: int | None = None,
        retry_after: int = 0,
        subproblems: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(detail, code=kind)
        self.kind = kind
        self.status = status or _STATUS.get(kind, 400)
        self.retry_after = retry_after  # seconds, for rateLimited
        self.subproblems = subproblems or []  # RFC 8555 6.7.1

    def document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "type": NS + self.kind,
            "detail": self.message,
            "status": self.status,
        }
        if self.subproblems:
            doc["subproblems"] = self.subproblems
        return doc


def subproblem(kind: str, detail: str, name: str) -> dict[str, Any]:
    """One subproblem about the identifier `name` (RFC 8555 6.7.1)."""
    return {
        "type": NS + kind,
        "detail": detail,
        "identifier": {"type": "dns", "value": name},
    }
