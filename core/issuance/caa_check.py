"""CAA before every issuance (BR 3.2.2.8): each name of each certificate, decided by
core/dns/caa.py on the record set core/dns/caa_lookup.py finds through the validating
resolver, all the names of a batch looked up together. A permitting decision is
reused for at most `reuse` (8 hours by default: Boulder rechecks after 7, the BR allow
8); a refusal or a failed lookup is asked again every time."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from core.base.clock import Clock, to_epoch
from core.dns.caa import Decision, Request, decide
from core.dns.caa_lookup import relevant_sets
from core.dns.resolver import DnsError, Resolver

MAX_REUSE = 8 * 3600
MAX_CACHED = 100_000


class CaaStatistics(msgspec.Struct, frozen=True):
    decisions: int  # decided on records looked up now
    reused: int  # answered by a permitting decision younger than `reuse`
    refused: int  # decisions that refused
    failed: int  # lookups that failed (never permission)
    queries: int  # DNS questions asked for CAA


class CaaChecker:
    def __init__(
        self,
        resolver: Resolver,
        *,
        identities: Sequence[str],
        clock: Clock,
        reuse: float = MAX_REUSE,
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
        )

    async def check(self, requests: Sequence[Request]) -> list[Decision | DnsError]:
        """One decision (or the lookup's failure) per request, in order."""
        now = to_epoch(self._clock.now())
        out: list[Decision | DnsError | None] = [None] * len(requests)
        todo: list[int] = []
        for i, req in enumerate(requests):
            cached = self._cache.get(req) if self._reuse > 0 else None
            if cached is not None and now - cached.checked_at < self._reuse:
                out[i] = cached
                self._reused += 1
            else:
                todo.append(i)
        if todo:
            fresh = await self.decide_now([requests[i] for i in todo], now)
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

    def _remember(self, req: Request, decision: Decision, now: int) -> None:
        if len(self._cache) >= MAX_CACHED:
            self._cache = {k: d for k, d in self._cache.items() if now - d.checked_at < self._reuse}
            if len(self._cache) >= MAX_CACHED:
                self._cache.clear()
        self._cache[req] = decision
