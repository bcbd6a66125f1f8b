"""Challenges taken up by clients and validated in the background: the challenge is
`processing` at once, and when the validator is done the authorization becomes valid
(with a domain validation recorded for the organization, in the same commit, so the
BR reuse rules apply to it afterwards) or invalid with the reason."""

from __future__ import annotations

import logging

import msgspec
import trio

from core.acme.problems import Problem
from core.acme.validation import Validator, key_authorization
from core.base.clock import Clock, to_epoch
from core.base.errors import HankoError
from core.store import (
    AcmeAccountRecord,
    AcmeAuthzRecord,
    DomainRecord,
    EabRecord,
    GroupCommitWriter,
    WriteTxn,
)

log = logging.getLogger("hanko.acme")
# Recorded under their ACME names: CAA validationmethods (RFC 8657) names them so.
METHODS = {"http-01": "http-01", "dns-01": "dns-01"}


class ChallengeRunner:
    def __init__(
        self, *, writer: GroupCommitWriter, clock: Clock, validator: Validator, parallel: int = 64
    ) -> None:
        self._writer = writer
        self._clock = clock
        self._validator = validator
        self._limit = trio.CapacityLimiter(parallel)
        self._nursery: trio.Nursery | None = None

    @property
    def validator(self) -> Validator:
        return self._validator

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            await trio.sleep_forever()

    async def respond(
        self, acct: AcmeAccountRecord, eab: EabRecord, authz: AcmeAuthzRecord, kind: str
    ) -> AcmeAuthzRecord:
        """Start validating `kind` for a pending authorization; the authorization as it
        now stands (a challenge already under way or done is answered as it is)."""
        if self._nursery is None:
            raise Problem("serverInternal", "challenge validation is not running", status=503)
        index = next((i for i, c in enumerate(authz.challenges) if c.type == kind), None)
        if index is None:
            raise Problem("malformed", f"no {kind} challenge here", status=404)
        if authz.status != "pending" or authz.challenges[index].status != "pending":
            return authz
        if authz.expires < to_epoch(self._clock.now()):
            raise Problem("malformed", "this authorization has expired")
        started = _with_challenge(authz, index, status="processing")
        await self._writer.submit(lambda t: t.put_acme_authz(started))
        self._nursery.start_soon(self._validate, acct, eab, started, index)
        return started

    async def _validate(
        self, acct: AcmeAccountRecord, eab: EabRecord, authz: AcmeAuthzRecord, index: int
    ) -> None:
        challenge = authz.challenges[index]
        key_auth = key_authorization(challenge.token, acct.thumbprint)
        async with self._limit:
            if challenge.type == "http-01":
                error = await self._validator.http01(authz.name, challenge.token, key_auth)
            else:
                error = await self._validator.dns01(authz.name, key_auth)
        now = to_epoch(self._clock.now())
        at_us = self._clock.now_us()
        if error is None:
            done = _with_challenge(
                authz, index, status="valid", validated_at=now, authz_status="valid"
            )
            record = DomainRecord(
                org_id=eab.organization,
                domain=authz.name,
                validated_at=now,
                method=METHODS[challenge.type],
            )

            def op(txn: WriteTxn) -> None:
                txn.put_acme_authz(done)
                txn.put_domain(record, at_us=at_us, actor=f"acme:{acct.id}")
        else:
            done = _with_challenge(
                authz, index, status="invalid", error=error, authz_status="invalid"
            )

            def op(txn: WriteTxn) -> None:
                txn.put_acme_authz(done)

        try:
            await self._writer.submit(op)
        except HankoError as exc:  # the store refused (full): the client may try again
            log.warning(
                "recording the %s result for %s failed: %s", challenge.type, authz.name, exc.message
            )


def _with_challenge(
    authz: AcmeAuthzRecord,
    index: int,
    *,
    status: str,
    validated_at: int = 0,
    error: str = "",
    authz_status: str | None = None,
) -> AcmeAuthzRecord:
    challenges = list(authz.challenges)
    challenges[index] = msgspec.structs.replace(
        challenges[index], status=status, validated_at=validated_at, error=error
    )
    return msgspec.structs.replace(
        authz, challenges=challenges, status=authz_status or authz.status
    )
