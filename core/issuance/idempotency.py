"""Idempotency keys of issuance requests: what a replay is stored under, what it must
match, and the answer when a request was already committed."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import msgspec

from core.base.errors import Conflict
from core.issuance.messages import IssueRequest

_JSON = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class IdempotencyIds:
    key: bytes  # what the idempotency record is stored under
    body: bytes  # SHA-256 of the request: a replay must match it


@dataclass(frozen=True, slots=True)
class Replayed:
    """A request committed before (by a twin that got there first): answer with these."""

    serials: list[bytes]


def ids_for(req: IssueRequest, caller: str) -> IdempotencyIds | None:
    """Each caller (API key) has idempotency keys of its own: two tenants' "order-1"
    never meet."""
    if req.idempotency_key is None:
        return None
    return IdempotencyIds(
        key=hashlib.sha256(
            b"issue\0" + caller.encode() + b"\0" + req.idempotency_key.encode()
        ).digest(),
        body=hashlib.sha256(_JSON.encode(req)).digest(),
    )


def conflict() -> Conflict:
    return Conflict(
        "this idempotency_key was already used with a different request",
        code="idempotency_conflict",
    )
