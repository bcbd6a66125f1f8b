"""The leader's pass over scheduled renewals whose issue window has opened: each is
issued through the engine as it was asked (every check again, the CSR's key checks
too), paid with its hold; one the policy or its licence now refuses fails, its hold
given back and its account told (webhook renewal.failed); one the service could not
issue now (the store, the signer or CT unavailable) stays scheduled for the next pass."""

from __future__ import annotations

import logging

import msgspec

from core.base.errors import CtUnavailable, HankoError, SignerError, StoreError
from core.issuance.engine import IssuanceEngine
from core.issuance.scheduling import request_of

log = logging.getLogger("hanko.renewals")


class DuePass(msgspec.Struct, frozen=True):
    issued: int
    failed: int
    postponed: int


async def issue_due(engine: IssuanceEngine, *, now: int, limit: int = 100) -> DuePass:
    with engine.store.read() as txn:
        due = txn.due_renewals(now, limit=limit)
    issued = failed = postponed = 0
    for rec in due:
        accounts = frozenset(rec.accounts) if rec.accounts is not None else None
        [result] = await engine.issue_many(
            [request_of(rec)], actor=rec.actor, accounts=accounts, held=[rec]
        )
        if not isinstance(result, HankoError):
            issued += 1
            continue
        if isinstance(result, (StoreError, SignerError, CtUnavailable)):
            postponed += 1
            log.warning("scheduled renewal %s postponed: %s", rec.id, result.code)
            continue
        failed += 1
        log.info(
            "scheduled renewal %s failed: %s",
            rec.id,
            result.code,
            extra={"event": "renewal.failed", "renewal": rec.id},
        )
        try:
            await engine.scheduling.settle(
                rec, "failed", actor="renewals", error=f"{result.code}: {result.message}"
            )
        except HankoError as exc:  # cancelled meanwhile, or the store unavailable
            log.warning("settling renewal %s failed: %s", rec.id, exc.message)
    return DuePass(issued=issued, failed=failed, postponed=postponed)
