"""HTTP handlers of the signing RPC (issuer keys; readers read) and of the issuance
preconditions on the admin API (admin keys). Thin: decode, call the engine or the
store, encode. The engine keeps every call inside the caller's accounts."""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec

from core.api.admin_messages import DomainIn, DomainOut, OrganizationIn
from core.api.http_errors import status_for
from core.api.router import BATCH_BODY, Request, Route
from core.base.clock import Clock, from_epoch, to_epoch
from core.base.dnsnames import normalize_dns_name
from core.base.errors import HankoError, PolicyError
from core.issuance import messages as m
from core.issuance.engine import IssuanceEngine
from core.issuance.org import check_org
from core.issuance.org_levels import LevelChange, level_op
from core.licenses import messages as lm
from core.licenses.desk import LicenseDesk
from core.store import DomainRecord, GroupCommitWriter, OrgRecord, Store

SCHEMA_TYPES = (
    m.IssueRequest,
    m.IssueResult,
    m.BatchIssueRequest,
    m.BatchIssueResult,
    m.RevokeRequest,
    m.RevocationView,
    m.CertificateView,
    m.ErrorBody,
    OrganizationIn,
    DomainIn,
    DomainOut,
    *lm.SCHEMA_TYPES,
)


def json_schema() -> dict[str, Any]:
    """JSON Schema of every request and answer, generated from the msgspec types."""
    _, components = msgspec.json.schema_components(SCHEMA_TYPES)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$defs": components}


def _validated_at(given: dt.datetime | None, clock: Clock, what: str) -> dt.datetime:
    """When a validation happened: now, or a time already past (one in the future would
    never expire as the reuse rules expect)."""
    now = clock.now()
    if given is None:
        return now
    if given > now:
        raise PolicyError(
            "validation_in_future",
            f"{what} validated_at {given.isoformat()} is in the future (now {now.isoformat()})",
        )
    return given


def org_record(body: OrganizationIn, clock: Clock) -> OrgRecord:
    at = _validated_at(body.validated_at, clock, "the organization's")
    return check_org(
        OrgRecord(
            id=body.id,
            level=body.level,
            organization=body.organization,
            country=body.country,
            state=body.state,
            locality=body.locality,
            validated_at=to_epoch(at),
            jurisdiction_country=body.jurisdiction_country,
            business_category=body.business_category,
            registration_number=body.registration_number,
            account=body.account or "",
            parent=body.parent or "",
        )
    )


def domain_record(
    org_id: str, body: DomainIn, clock: Clock, *, actor: str, allowed: bool
) -> DomainRecord:
    """An operator's attestation of a domain validation (`allowed`: [dcv]
    allow_attested): recorded as attested, with who asserted it."""
    if not allowed:
        raise PolicyError(
            "attestation_disabled",
            "this CA records only validations it performs: use a domain challenge"
            " (dns-change, website-change or email) and verify it",
        )
    name = normalize_dns_name(body.domain, allow_wildcard=False)
    at = _validated_at(body.validated_at, clock, f"{name}'s")
    return DomainRecord(
        org_id=org_id,
        domain=name,
        validated_at=to_epoch(at),
        method=body.method,
        attested_by=actor,
    )


def domain_out(rec: DomainRecord) -> DomainOut:
    return DomainOut(
        organization=rec.org_id,
        domain=rec.domain,
        method=rec.method,
        validated_at=from_epoch(rec.validated_at),
        attested_by=rec.attested_by or None,
    )


def routes(
    engine: IssuanceEngine,
    store: Store,
    writer: GroupCommitWriter,
    clock: Clock,
    desk: LicenseDesk,
    *,
    allow_attested: bool = True,
) -> list[Route]:
    async def issue(request: Request) -> tuple[int, Any]:
        body = await request.json(m.IssueRequest)
        who = request.principal
        result = await engine.issue(body, actor=who.id, accounts=who.accounts)
        # A renewal before its issue window: accepted, issued when it opens.
        return (202 if isinstance(result, m.ScheduledRenewalView) else 201), result

    async def issue_batch(request: Request) -> tuple[int, Any]:
        body = await request.json(m.BatchIssueRequest)
        who = request.principal
        results = await engine.issue_many(body.requests, actor=who.id, accounts=who.accounts)
        items = [
            m.BatchItem(error=m.ItemError(error=r.code, detail=r.message, **r.fields()))
            if isinstance(r, HankoError)
            else m.BatchItem(scheduled=r)
            if isinstance(r, m.ScheduledRenewalView)
            else m.BatchItem(result=r)
            for r in results
        ]
        return 200, m.BatchIssueResult(results=items)

    async def get_certificate(request: Request) -> tuple[int, Any]:
        return 200, engine.view(request.params["serial"], accounts=request.principal.accounts)

    async def revoke(request: Request) -> tuple[int, Any]:
        body = await request.json(m.RevokeRequest)
        who = request.principal
        view = await engine.revoke(
            request.params["serial"], body.reason, actor=who.id, accounts=who.accounts
        )
        return 200, view

    async def schema(request: Request) -> tuple[int, Any]:
        return 200, json_schema()

    async def put_org(request: Request) -> tuple[int, Any]:
        org = org_record(await request.json(OrganizationIn), clock)
        org = await writer.submit(desk.attach_org(org, actor=request.principal.id))
        return 201, msgspec.structs.asdict(org) | {"validated_at": from_epoch(org.validated_at)}

    async def change_level(request: Request) -> tuple[int, Any]:
        body = await request.json(LevelChange)
        op = level_op(
            request.params["org"], body, now=to_epoch(clock.now()), actor=request.principal.id
        )
        org = await writer.submit(op)
        return 200, msgspec.structs.asdict(org) | {"validated_at": from_epoch(org.validated_at)}

    async def put_domain(request: Request) -> tuple[int, Any]:
        org_id = request.params["org"]
        actor = request.principal.id
        body = await request.json(DomainIn)
        rec = domain_record(org_id, body, clock, actor=actor, allowed=allow_attested)
        at_us = clock.now_us()
        await writer.submit(lambda t: t.put_domain(rec, at_us=at_us, actor=actor))
        return 201, domain_out(rec)

    async def remove_domain(request: Request) -> tuple[int, Any]:
        org_id = request.params["org"]
        domain = normalize_dns_name(request.params["domain"], allow_wildcard=False)
        at_us = clock.now_us()
        actor = request.principal.id
        rec = await writer.submit(
            lambda t: t.remove_domain(org_id, domain, at_us=at_us, actor=actor)
        )
        return 200, domain_out(rec)

    return [
        Route("POST", "/v1/certificates", "issue", issue),
        Route("POST", "/v1/certificates:batch", "issue", issue_batch, max_body=BATCH_BODY),
        Route("GET", "/v1/certificates/{serial}", "read", get_certificate),
        Route("POST", "/v1/certificates/{serial}/revoke", "revoke", revoke),
        Route("GET", "/v1/schema", None, schema),
        Route("POST", "/v1/admin/organizations", "admin", put_org),
        Route("POST", "/v1/admin/organizations/{org}/level", "admin", change_level),
        Route("POST", "/v1/admin/organizations/{org}/domains", "admin", put_domain),
        Route("DELETE", "/v1/admin/organizations/{org}/domains/{domain}", "admin", remove_domain),
    ]


__all__ = ["json_schema", "routes", "status_for"]
