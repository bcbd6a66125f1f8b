"""Domain validation performed by hanko for portals: a challenge made and stored (for
e-mail, sent), then checked on request; on success the organization's domain
validation is recorded with its method and evidence in the same commit as the
challenge's end. The checks themselves are pure (core/dcv/methods.py); this wires
them to the store, the resolver, the website edge and the mailer.

dns-change and website-change stand only once the remote perspectives corroborate
what the primary saw (BR 3.2.2.9; core/mpic): the evidence records their quorum. A
refusal counts as an attempt and names who did not corroborate; perspectives that did
not answer leave the challenge as it was (try again later). E-mail is not a network
observation and is not sent to them."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass

import msgspec

from core.base.clock import Clock, to_epoch
from core.base.dnsnames import normalize_dns_name
from core.base.errors import HankoError, LookupFailed, NotFound, PolicyError
from core.dcv import methods
from core.dcv.mailer import Mailer
from core.dcv.website import fetch_file
from core.dns import wire
from core.dns.resolver import DnsError, Resolver
from core.mpic.client import Corroborator, refusal
from core.mpic.messages import Check
from core.store import DomainRecord, GroupCommitWriter, ReadTxn, Store, WriteTxn
from core.store.dcv import DcvChallenge, DcvMethod


@dataclass(frozen=True)
class DcvSettings:
    lifetime: int = 30 * 86400
    dns_label: str = "_validation-hanko"
    http_port: int = 80
    allow_private: bool = False
    timeout: float = 10.0
    ca_name: str = "hanko"  # who the validation e-mail says is asking


class DcvFailed(PolicyError):
    """The check found no proof of control: nothing recorded."""

    def __init__(self, challenge: DcvChallenge, reason: str) -> None:
        super().__init__("dcv_failed", f"{challenge.domain}: {reason}")
        self.challenge = challenge.id
        self.attempts = challenge.attempts

    def fields(self) -> dict[str, str]:
        return {"challenge": self.challenge, "attempts": str(self.attempts)}


class DomainControl:
    def __init__(
        self,
        *,
        store: Store,
        writer: GroupCommitWriter,
        resolver: Resolver,
        clock: Clock,
        settings: DcvSettings,
        mailer: Mailer | None = None,
        random: Callable[[int], bytes] = secrets.token_bytes,
        corroborator: Corroborator | None = None,
    ) -> None:
        self._corroborator = corroborator
        self._store = store
        self._writer = writer
        self._resolver = resolver
        self._clock = clock
        self._settings = settings
        self._mailer = mailer
        self._random = random

    async def challenge(
        self,
        org_id: str,
        domain: str,
        method: DcvMethod,
        *,
        actor: str,
        accounts: frozenset[str] | None = None,
        address: str | None = None,
    ) -> DcvChallenge:
        s = self._settings
        name = normalize_dns_name(domain, allow_wildcard=False)
        if method == "email" and self._mailer is None:
            raise PolicyError("email_not_configured", "this CA sends no e-mail: [email] host")
        with self._store.read() as txn:
            _check_org(txn, org_id, accounts)
        now = to_epoch(self._clock.now())
        try:
            challenge = methods.new_challenge(
                challenge_id=challenge_id(),
                org_id=org_id,
                domain=name,
                method=method,
                raw=self._random(methods.RANDOM_BYTES),
                now=now,
                lifetime=s.lifetime,
                actor=actor,
                dns_label=s.dns_label,
                address=address,
                http_port=s.http_port,
            )
        except methods.ChallengeRefused as exc:
            raise PolicyError("address_not_constructed", str(exc)) from None
        if self._mailer is not None and method == "email":
            # Sent before it is stored: a challenge never sent is never usable.
            subject, body = methods.mail_text(challenge, s.ca_name)
            await self._mailer.send(challenge.sent_to, subject, body)
        at_us = self._clock.now_us()
        await self._writer.submit(
            lambda t: t.put_dcv_challenge(challenge, at_us=at_us, actor=actor)
        )
        return challenge

    def get(
        self, org_id: str, challenge_id: str, accounts: frozenset[str] | None = None
    ) -> DcvChallenge:
        with self._store.read() as txn:
            _check_org(txn, org_id, accounts)
            ch = txn.get_dcv_challenge(challenge_id)
        if ch is None or ch.org_id != org_id:
            raise NotFound(f"no challenge {challenge_id!r} of {org_id}", code="challenge_unknown")
        return ch

    async def verify(
        self,
        org_id: str,
        challenge_id: str,
        *,
        actor: str,
        value: str | None = None,
        accounts: frozenset[str] | None = None,
    ) -> DomainRecord:
        """The domain validation recorded, or DcvFailed (nothing recorded but the
        attempt) or a refusal of the challenge itself."""
        ch = self.get(org_id, challenge_id, accounts)
        now = to_epoch(self._clock.now())
        unusable = methods.usable(ch, now)
        if unusable is not None:
            raise PolicyError("challenge_unusable", f"{ch.domain}: {unusable}")
        verdict = await self._check(ch, value, now)
        attempts = ch.attempts + 1
        at_us = self._clock.now_us()
        refused: HankoError | None = None
        if verdict.ok and self._corroborator is not None and ch.method != "email":
            [v] = await self._corroborator.corroborate([_check_of(ch, self._settings.http_port)])
            if v.corroborated:
                evidence = {
                    **verdict.evidence,
                    "corroboration": v.summary(),
                    "perspectives": " ".join(v.passed),
                }
                verdict = methods.Verdict(True, verdict.reason, evidence)
            else:
                refused = refusal(v, ch.domain)
                if v.unanswered:
                    raise refused
                verdict = methods.Verdict(False, refused.message, verdict.evidence)
        if not verdict.ok:
            spent = attempts >= methods.MAX_ATTEMPTS
            failed = msgspec.structs.replace(
                ch,
                attempts=attempts,
                last_error=verdict.reason,
                status="invalid" if spent else ch.status,
            )

            def attempt(txn: WriteTxn) -> None:
                if _still_pending(txn, ch):
                    txn.put_dcv_challenge(failed, at_us=at_us, actor=actor)

            await self._writer.submit(attempt)
            raise refused if refused is not None else DcvFailed(failed, verdict.reason)
        done = msgspec.structs.replace(ch, attempts=attempts, status="valid", validated_at=now)
        record = DomainRecord(
            org_id=org_id,
            domain=ch.domain,
            validated_at=now,
            method=ch.method,
            evidence=json.dumps(verdict.evidence, sort_keys=True),
            challenge=ch.id,
        )

        def commit(txn: WriteTxn) -> None:
            if not _still_pending(txn, ch):
                raise PolicyError(
                    "challenge_unusable", f"{ch.domain}: this challenge was already used"
                )
            txn.put_dcv_challenge(done, at_us=at_us, actor=actor)
            txn.put_domain(record, at_us=at_us, actor=actor)

        await self._writer.submit(commit)
        return record

    async def _check(self, ch: DcvChallenge, value: str | None, now: int) -> methods.Verdict:
        s = self._settings
        if ch.method == "dns-change":
            try:
                reply = await self._resolver.client.ask(ch.record_name, wire.TYPES["TXT"])
                values = [wire.txt_rdata(r) for r in reply.records]
            except (DnsError, wire.WireError) as exc:
                # Not the applicant's failure, and never a pass: try again later.
                raise LookupFailed(
                    f"{ch.record_name}: {exc}; try again later", code="dns_lookup_failed"
                ) from None
            return methods.check_dns(ch, values, reply.authenticated, now)
        if ch.method == "website-change":
            fetched = await fetch_file(
                self._resolver,
                ch.url,
                timeout=s.timeout,
                allow_private=s.allow_private,
                ports=methods.AUTHORIZED_PORTS | {s.http_port},
            )
            return methods.check_website(ch, fetched, now)
        return methods.check_email(ch, value, now)


def _check_of(ch: DcvChallenge, http_port: int) -> Check:
    """What the remote perspectives are asked to see for a challenge the primary saw."""
    if ch.method == "dns-change":
        return Check(
            kind="dns-change", name=ch.domain, record=ch.record_name, expect=ch.random_value
        )
    return Check(
        kind="website-change", name=ch.domain, url=ch.url, expect=ch.random_value, port=http_port
    )


def _check_org(txn: ReadTxn, org_id: str, accounts: frozenset[str] | None) -> None:
    org = txn.get_org(org_id)
    if org is None or (accounts is not None and org.account not in accounts):
        raise NotFound(f"no organization {org_id!r}", code="organization_unknown")


def _still_pending(txn: WriteTxn, ch: DcvChallenge) -> bool:
    """The challenge as stored is the one checked (a concurrent check did not end it)."""
    now = txn.get_dcv_challenge(ch.id)
    return now is not None and now.status == "pending" and now.attempts == ch.attempts


def challenge_id() -> str:
    """A new challenge's id: 16 URL-safe characters, never a leading "-" (which a command
    line, `hanko domain verify --challenge ID`, would take for an option)."""
    while (found := secrets.token_urlsafe(12)).startswith("-"):
        pass
    return found
