"""Domain validation performed by hanko, over the admin API: a challenge for an
organization's domain (dns-change, website-change, email), then its check. Admin keys
act for every organization, issuer keys for their accounts' (others are answered as
unknown)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

import msgspec

from core.api.router import Request, Route
from core.base.clock import from_epoch
from core.dcv.service import DomainControl
from core.store import DomainRecord
from core.store.dcv import DcvChallenge

_STRICT = {"forbid_unknown_fields": True, "kw_only": True, "frozen": True}
_ORG = "/v1/admin/organizations/{org}/domains/challenges"


class ChallengeIn(msgspec.Struct, **_STRICT):
    domain: str
    method: Literal["dns-change", "website-change", "email"]
    address: str | None = None  # email: admin@, administrator@, webmaster@, ... the domain


class VerifyIn(msgspec.Struct, **_STRICT):
    value: str | None = None  # email: the random value the recipient returned


class ChallengeOut(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    id: str
    organization: str
    method: str
    domain: str
    # None for email: the value travels only in the e-mail, so that returning it proves
    # the mailbox; shown to the requester it would prove nothing.
    random_value: str | None
    expires_at: dt.datetime
    status: str
    attempts: int
    record_name: str | None = None  # dns-change: a TXT record here holds the value
    url: str | None = None  # website-change: this file holds the value
    sent_to: str | None = None  # email: where the value was sent
    validated_at: dt.datetime | None = None
    last_error: str | None = None


class ValidationOut(msgspec.Struct, frozen=True, kw_only=True):
    organization: str
    domain: str
    method: str
    validated_at: dt.datetime
    challenge: str
    evidence: dict[str, Any]


def challenge_out(ch: DcvChallenge) -> ChallengeOut:
    """The challenge as its applicant needs it (an e-mail challenge's value, never)."""
    return ChallengeOut(
        id=ch.id,
        organization=ch.org_id,
        method=ch.method,
        domain=ch.domain,
        random_value=None if ch.method == "email" else ch.random_value,
        expires_at=from_epoch(ch.expires_at),
        status=ch.status,
        attempts=ch.attempts,
        record_name=ch.record_name or None,
        url=ch.url or None,
        sent_to=ch.sent_to or None,
        validated_at=from_epoch(ch.validated_at) if ch.validated_at else None,
        last_error=ch.last_error or None,
    )


def validation_out(rec: DomainRecord) -> ValidationOut:
    return ValidationOut(
        organization=rec.org_id,
        domain=rec.domain,
        method=rec.method,
        validated_at=from_epoch(rec.validated_at),
        challenge=rec.challenge,
        evidence=msgspec.json.decode(rec.evidence) if rec.evidence else {},
    )


def routes(dcv: DomainControl) -> list[Route]:
    async def create(request: Request) -> tuple[int, Any]:
        body = await request.json(ChallengeIn)
        who = request.principal
        ch = await dcv.challenge(
            request.params["org"],
            body.domain,
            body.method,
            actor=who.id,
            accounts=who.accounts,
            address=body.address,
        )
        return 201, challenge_out(ch)

    async def show(request: Request) -> tuple[int, Any]:
        who = request.principal
        return 200, challenge_out(
            dcv.get(request.params["org"], request.params["id"], who.accounts)
        )

    async def verify(request: Request) -> tuple[int, Any]:
        body = await request.json(VerifyIn)
        who = request.principal
        rec = await dcv.verify(
            request.params["org"],
            request.params["id"],
            actor=who.id,
            value=body.value,
            accounts=who.accounts,
        )
        return 200, validation_out(rec)

    return [
        Route("POST", _ORG, "validate", create),
        Route("GET", _ORG + "/{id}", "validate", show),
        Route("POST", _ORG + "/{id}/verify", "validate", verify),
    ]
