"""CAA before every issuance (BR 3.2.2.8): each name of each certificate, decided by
core/dns/caa.py on the record set core/dns/caa_lookup.py finds through the validating
resolver, all the names of a batch looked up together. A permitting decision is
reused for at most `reuse` (8 hours by default: Boulder rechecks after 7, the BR allow
8); a refusal or a failed lookup is asked again every time.

With remote perspectives (core/mpic), a permitting decision stands only once they
corroborate it (BR 3.2.2.9): every name the primary permits in a batch goes to them
in one request, and a name they do not corroborate is refused with their quorum; the
decision that stands carries the quorum to the audit log."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
import trio

from core.base.clock import Clock, to_epoch
from core.base.errors import HankoError
from core.dns.caa import Decision, Request, decide
from core.dns.caa_lookup import relevant_sets
from core.dns.resolver import DnsError, Resolver
from core.mpic.client import Corroborator, refusal
from core.mpic.messages import Check
from core.mpic.quorum import Verdict

MAX_REUSE = 8 * 3600
MAX_CACHED = 100_000


class CaaStatistics(msgspec.Struct, frozen=True):
    decisions: int  # decided on records looked up now
    reused: int  # answered by a permitting decision younger than `reuse`
    refused: int  # decisions that refused
    failed: int  # lookups that failed (never permission)
    queries: int  # DNS questions asked for CAA
    not_corroborated: int  # permitted here, refused by the remote perspectives' quorum


class CaaChecker:
    def __init__(
        self,
        resolver: Resolver,
        *,
        identities: Sequence[str],
        clock: Clock,
        reuse: float = MAX_REUSE,
        corroborator: Corroborator | None = None,
    ) -> None:
        if not identities:
            raise ValueError("CAA checking needs the CA's issuer domains ([caa] identities)")
        self._resolver = resolver
        self._identities = frozenset(i.lower().rstrip(".") for i in identities)
        self._clock = clock
        self._reuse = min(reuse, MAX_REUSE)
        self._cache: dict[Request, Decision] = {}
        self._decisions = 0
        self._reused = 0
        self._refused = 0
        self._failed = 0
        self._not_corroborated = 0
        self._corroborator = corroborator
        self._queries_before = resolver.client.asked

    @property
    def identities(self) -> frozenset[str]:
        return self._identities

    def statistics(self) -> CaaStatistics:
        return CaaStatistics(
            decisions=self._decisions,
            reused=self._reused,
            refused=self._refused,
            failed=self._failed,
            queries=self._resolver.client.asked - self._queries_before,
            not_corroborated=self._not_corroborated,
        )

    async def check(self, requests: Sequence[Request]) -> list[Decision | HankoError]:
        """One decision (or the lookup's failure, or the perspectives' refusal) per
        request, in order."""
        now = to_epoch(self._clock.now())
        out: list[Decision | HankoError | None] = [None] * len(requests)
        todo: list[int] = []
        for i, req in enumerate(requests):
            cached = self._cache.get(req) if self._reuse > 0 else None
            if cached is not None and now - cached.checked_at < self._reuse:
                out[i] = cached
                self._reused += 1
            else:
                todo.append(i)
        if todo:
            asked = [requests[i] for i in todo]
            fresh = await self.corroborated(asked, await self.decide_now(asked, now))
            for i, result in zip(todo, fresh, strict=True):
                out[i] = result
                if isinstance(result, Decision) and result.permitted and self._reuse > 0:
                    self._remember(requests[i], result, now)
        return [r for r in out if r is not None]

    async def decide_now(self, requests: Sequence[Request], now: int) -> list[Decision | DnsError]:
        """Looked up now, never from the cache (`hanko caa check` asks this way)."""
        found = await relevant_sets(self._resolver, {r.name for r in requests})
        out: list[Decision | DnsError] = []
        # Names decided on the same record set with the same parameters (www.example.jp
        # and example.jp) share one decision but for the name.
        same: dict[tuple[object, ...], Decision] = {}
        for req in requests:
            f = found[req.name.rstrip(".").lower()]
            if isinstance(f, DnsError):
                self._failed += 1
                out.append(f)
                continue
            key = (
                f.found_at,
                f.records,
                f.authenticated,
                req.wildcard,
                req.account_uri,
                req.method,
            )
            twin = same.get(key)
            if twin is not None:
                decision = msgspec.structs.replace(twin, name=req.name)
            else:
                decision = decide(
                    req,
                    f.records,
                    f.found_at,
                    identities=self._identities,
                    checked_at=now,
                    authenticated=f.authenticated,
                )
                same[key] = decision
            self._decisions += 1
            self._refused += not decision.permitted
            out.append(decision)
        return out

    async def corroborated(
        self, requests: Sequence[Request], decisions: list[Decision | DnsError]
    ) -> list[Decision | HankoError]:
        """`decisions` with each permitting one corroborated by the remote perspectives
        (its quorum recorded) or replaced by their refusal."""
        out: list[Decision | HankoError] = list(decisions)
        if self._corroborator is None:
            return out
        asking = [i for i, d in enumerate(decisions) if isinstance(d, Decision) and d.permitted]
        if not asking:
            return out
        # One check per distinct request: a batch names the same name many times.
        keys = {requests[i]: None for i in asking}
        checks = [_caa_check(r) for r in keys]
        verdicts = dict(
            zip(
                keys,
                await self._corroborator.corroborate(
                    checks, caa_identities=sorted(self._identities)
                ),
                strict=True,
            )
        )
        for i in asking:
            v = verdicts[requests[i]]
            d = decisions[i]
            if not isinstance(d, Decision):  # only permitting decisions were asked
                continue
            if v.corroborated:
                out[i] = msgspec.structs.replace(d, corroboration=v.summary())
            else:
                self._not_corroborated += 1
                shown = ("*." if d.wildcard else "") + d.name
                out[i] = refusal(v, f"CAA for {shown}")
        return out

    async def with_validation(
        self, request: Request, checks: Sequence[Check]
    ) -> tuple[Decision | HankoError, list[Verdict]]:
        """CAA for `request` decided now, as a domain validation happens (Boulder's
        VA does the same): the primary decides while one request asks the remote
        perspectives for the validation's `checks` and the CAA check together. A
        corroborated permit is remembered, so the issuance that follows reuses it (at
        most `reuse`); the verdicts on `checks` come back in order."""
        now = to_epoch(self._clock.now())
        corroborator = self._corroborator
        if corroborator is None:
            [decided] = await self.decide_now([request], now)
            return decided, []
        verdicts: list[Verdict] = []

        async def remote() -> None:
            verdicts.extend(
                await corroborator.corroborate(
                    [*checks, _caa_check(request)], caa_identities=sorted(self._identities)
                )
            )

        async with trio.open_nursery() as nursery:
            nursery.start_soon(remote)
            [decided] = await self.decide_now([request], now)
        caa, rest = verdicts[-1], verdicts[:-1]
        if not (isinstance(decided, Decision) and decided.permitted):
            return decided, rest
        if not caa.corroborated:
            self._not_corroborated += 1
            shown = ("*." if decided.wildcard else "") + decided.name
            return refusal(caa, f"CAA for {shown}"), rest
        permitted = msgspec.structs.replace(decided, corroboration=caa.summary())
        if self._reuse > 0:
            self._remember(request, permitted, now)
        return permitted, rest

    def _remember(self, req: Request, decision: Decision, now: int) -> None:
        if len(self._cache) >= MAX_CACHED:
            self._cache = {k: d for k, d in self._cache.items() if now - d.checked_at < self._reuse}
            if len(self._cache) >= MAX_CACHED:
                self._cache.clear()
        self._cache[req] = decision


def _caa_check(r: Request) -> Check:
    return Check(
        kind="caa",
        name=r.name.rstrip(".").lower(),
        wildcard=r.wildcard,
        account_uri=r.account_uri,
        method=r.method,
    )
