"""Challenges taken up by clients and validated in the background: the challenge is
`processing` at once, and when the validator is done the authorization becomes valid
(with a domain validation recorded for the organization, in the same commit, so the
BR reuse rules apply to it afterwards) or invalid with the reason.

With remote perspectives (core/mpic), what the primary validated stands only once
their quorum corroborates it (BR 3.2.2.9): the challenge records the quorum, or is
invalid with a subproblem per perspective that did not corroborate. Each attempt is
new: a challenge retried by a new order asks them again."""

from __future__ import annotations

import json
import logging
from typing import Any

import msgspec
import trio

from core.acme.problems import Problem, subproblem
from core.acme.validation import Validator, key_authorization
from core.base.clock import Clock, to_epoch
from core.base.errors import HankoError
from core.dns.caa import Request
from core.issuance.caa_check import CaaChecker
from core.mpic.client import Corroborator
from core.mpic.messages import Check
from core.store import (
    AcmeAccountRecord,
    AcmeAuthzRecord,
    AcmeChallenge,
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
        self,
        *,
        writer: GroupCommitWriter,
        clock: Clock,
        validator: Validator,
        parallel: int = 64,
        corroborator: Corroborator | None = None,
        caa: CaaChecker | None = None,
    ) -> None:
        self._writer = writer
        self._corroborator = corroborator
        # With remote perspectives, CAA is decided with the validation (one request to
        # them, not two) and remembered for the finalize that follows.
        self._caa = caa if corroborator is not None else None
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
        self,
        acct: AcmeAccountRecord,
        eab: EabRecord,
        authz: AcmeAuthzRecord,
        kind: str,
        *,
        account_uri: str | None = None,
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
        self._nursery.start_soon(self._validate, acct, eab, started, index, account_uri)
        return started

    async def _validate(
        self,
        acct: AcmeAccountRecord,
        eab: EabRecord,
        authz: AcmeAuthzRecord,
        index: int,
        account_uri: str | None = None,
    ) -> None:
        challenge = authz.challenges[index]
        key_auth = key_authorization(challenge.token, acct.thumbprint)
        quorum: dict[str, Any] = {}
        corroborator = self._corroborator
        async with self._limit:
            if corroborator is None:
                error = await self._primary(authz.name, challenge, key_auth)
            else:
                # The primary and the remote perspectives look at once (as Boulder's VA
                # does): the validation takes the longer of the two, not their sum. What
                # the perspectives said counts only if the primary passed.
                async def remote() -> None:
                    quorum.update(
                        await self._corroborate(
                            corroborator, authz, challenge, key_auth, account_uri
                        )
                    )

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(remote)
                    error = await self._primary(authz.name, challenge, key_auth)
                if error is None:
                    error = quorum.get("error")
        now = to_epoch(self._clock.now())
        at_us = self._clock.now_us()
        if error is None:
            done = _with_challenge(
                authz,
                index,
                status="valid",
                validated_at=now,
                authz_status="valid",
                corroboration=quorum.get("corroboration", ""),
            )
            record = DomainRecord(
                org_id=eab.organization,
                domain=authz.name,
                validated_at=now,
                method=METHODS[challenge.type],
                evidence=json.dumps(quorum, sort_keys=True) if quorum else "",
            )

            def op(txn: WriteTxn) -> None:
                txn.put_acme_authz(done)
                txn.put_domain(record, at_us=at_us, actor=f"acme:{acct.id}")
        else:
            done = _with_challenge(
                authz,
                index,
                status="invalid",
                error=error,
                authz_status="invalid",
                error_type=quorum.get("error_type", ""),
                perspectives=quorum.get("perspectives", []),
            )

            def op(txn: WriteTxn) -> None:
                txn.put_acme_authz(done)

        try:
            await self._writer.submit(op)
        except HankoError as exc:  # the store refused (full): the client may try again
            log.warning(
                "recording the %s result for %s failed: %s", challenge.type, authz.name, exc.message
            )

    async def _primary(self, name: str, challenge: AcmeChallenge, key_auth: str) -> str | None:
        if challenge.type == "http-01":
            return await self._validator.http01(name, challenge.token, key_auth)
        return await self._validator.dns01(name, key_auth)

    async def _corroborate(
        self,
        corroborator: Corroborator,
        authz: AcmeAuthzRecord,
        challenge: AcmeChallenge,
        key_auth: str,
        account_uri: str | None,
    ) -> dict[str, Any]:
        """The remote perspectives' verdict on what the primary validated: the
        evidence to record, or the error, its problem type and who did not agree."""
        name = authz.name
        check = Check(
            kind="http-01" if challenge.type == "http-01" else "dns-01",
            name=name,
            expect=key_auth,
            token=challenge.token,
            port=self._validator.http_port,
        )
        if self._caa is not None:
            request = Request(
                name=name, wildcard=authz.wildcard, account_uri=account_uri, method=challenge.type
            )
            caa, [v] = await self._caa.with_validation(request, [check])
            if isinstance(caa, HankoError):
                problem = {"caa_forbidden": "caa", "caa_lookup_failed": "dns"}.get(
                    caa.code, "unauthorized" if caa.code == "not_corroborated" else "serverInternal"
                )
                return {"error": caa.message, "error_type": problem, "perspectives": []}
        else:
            [v] = await corroborator.corroborate([check])
        if v.corroborated:
            return {
                "corroboration": v.summary(),
                "perspectives": " ".join(v.passed),
                "method": challenge.type,
            }
        # Disagreement looks like a hijack of the primary's view: unauthorized; no
        # answer at all is the CA's trouble, and worth another order later.
        kind = "serverInternal" if v.unanswered else "unauthorized"
        return {
            "error": f"{name}: {challenge.type} not corroborated: {v.reason}",
            "error_type": kind,
            "perspectives": sorted(v.why.items()),
        }


def challenge_problem(name: str, c: AcmeChallenge) -> Problem:
    """The problem document of a challenge that failed: a subproblem per remote
    perspective that did not corroborate it."""
    kind = c.error_type or "incorrectResponse"
    return Problem(
        kind,
        c.error,
        subproblems=[subproblem(kind, f"{code}: {said}", name) for code, said in c.perspectives],
    )


def _with_challenge(
    authz: AcmeAuthzRecord,
    index: int,
    *,
    status: str,
    validated_at: int = 0,
    error: str = "",
    authz_status: str | None = None,
    error_type: str = "",
    perspectives: list[tuple[str, str]] | None = None,
    corroboration: str = "",
) -> AcmeAuthzRecord:
    challenges = list(authz.challenges)
    challenges[index] = msgspec.structs.replace(
        challenges[index],
        status=status,
        validated_at=validated_at,
        error=error,
        error_type=error_type,
        perspectives=list(perspectives or []),
        corroboration=corroboration,
    )
    return msgspec.structs.replace(
        authz, challenges=challenges, status=authz_status or authz.status
    )
