"""What a remote perspective does with a request: each check performed from here,
through this perspective's own resolver (its own cache, its own view of DNS), with the
same rules as the primary's (core/dns/caa.py, core/acme/validation.py,
core/dcv/methods.py), and a result saying whether it saw what proves the primary's
decision. Nothing is remembered between requests but the attempt ids: an id seen
before is refused, so no answer is ever reused by a retry."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable

import msgspec
import trio

from core.acme.validation import Validator
from core.base.clock import Clock, to_epoch
from core.base.errors import ClientError
from core.dcv import methods
from core.dcv.website import fetch_file
from core.dns import wire
from core.dns.caa import Request, decide
from core.dns.caa_lookup import relevant_sets
from core.dns.resolver import DnsError, Resolver
from core.mpic.messages import Check, CheckRequest, Result
from core.store.dcv import DcvChallenge, DcvMethod

REMEMBERED_ATTEMPTS = 100_000


class CheckerStatistics(msgspec.Struct, frozen=True, kw_only=True):
    requests: int
    checks: int
    passed: int
    failed: int
    running: int  # checks under way now
    refused_attempts: int  # requests whose attempt id was seen before


class Checker:
    def __init__(
        self,
        resolver: Resolver,
        *,
        clock: Clock,
        timeout: float,
        concurrency: int,
        allow_private: bool = False,
    ) -> None:
        self._resolver = resolver
        self._clock = clock
        self._timeout = timeout
        self._limit = trio.CapacityLimiter(concurrency)
        self._allow_private = allow_private
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._requests = self._checks = self._passed = self._failed = self._refused = 0

    @property
    def resolver(self) -> Resolver:
        return self._resolver

    async def run(self, request: CheckRequest) -> list[Result]:
        """One result per check, in order, all within the deadline (a check still
        running then is a failure: it saw nothing)."""
        if request.attempt in self._seen:
            self._refused += 1
            raise ClientError(
                f"attempt {request.attempt} was asked before: a retry is a new attempt",
                code="attempt_reused",
            )
        self._seen[request.attempt] = None
        if len(self._seen) > REMEMBERED_ATTEMPTS:
            self._seen.popitem(last=False)
        self._requests += 1
        results: list[Result | None] = [None] * len(request.checks)
        identities = frozenset(i.lower().rstrip(".") for i in request.caa_identities)
        caa = [i for i, c in enumerate(request.checks) if c.kind == "caa"]
        with trio.move_on_after(self._timeout):
            async with trio.open_nursery() as nursery:
                if caa:
                    nursery.start_soon(self._caa, request.checks, caa, identities, results)
                for i, check in enumerate(request.checks):
                    if check.kind != "caa":
                        nursery.start_soon(self._one, check, i, results)
        late = Result(ok=False, detail=f"the check took longer than {self._timeout:g} s")
        out = [r if r is not None else late for r in results]
        self._checks += len(out)
        passed = sum(r.ok for r in out)
        self._passed += passed
        self._failed += len(out) - passed
        return out

    async def _caa(
        self,
        checks: list[Check],
        indexes: list[int],
        identities: frozenset[str],
        results: list[Result | None],
    ) -> None:
        """Every CAA name of the request looked up together, level by level."""
        async with self._limit:
            found = await relevant_sets(self._resolver, {checks[i].name for i in indexes})
        now = to_epoch(self._clock.now())
        for i in indexes:
            c = checks[i]
            f = found[c.name.rstrip(".").lower()]
            if isinstance(f, DnsError):
                results[i] = Result(ok=False, detail=f.message)
                continue
            if not identities:
                results[i] = Result(ok=False, detail="no CAA identities were given")
                continue
            req = Request(
                name=c.name, wildcard=c.wildcard, account_uri=c.account_uri, method=c.method
            )
            d = decide(
                req,
                f.records,
                f.found_at,
                identities=identities,
                checked_at=now,
                authenticated=f.authenticated,
            )
            results[i] = Result(ok=d.permitted, detail="" if d.permitted else d.reason)

    async def _one(self, check: Check, i: int, results: list[Result | None]) -> None:
        async with self._limit:
            results[i] = await _PERFORM[check.kind](self, check)

    async def _dns01(self, c: Check) -> Result:
        error = await self._validator(c.port).dns01(c.name, c.expect)
        return Result(ok=error is None, detail=error or "")

    async def _http01(self, c: Check) -> Result:
        error = await self._validator(c.port).http01(c.name, c.token, c.expect)
        return Result(ok=error is None, detail=error or "")

    async def _dns_change(self, c: Check) -> Result:
        ch = _challenge(c, "dns-change")
        try:
            reply = await self._resolver.client.ask(c.record, wire.TYPES["TXT"])
            values = [wire.txt_rdata(r) for r in reply.records]
        except (DnsError, wire.WireError) as exc:
            return Result(ok=False, detail=f"{c.record}: {exc}")
        v = methods.check_dns(ch, values, reply.authenticated, to_epoch(self._clock.now()))
        return Result(ok=v.ok, detail="" if v.ok else v.reason)

    async def _website_change(self, c: Check) -> Result:
        ch = _challenge(c, "website-change")
        fetched = await fetch_file(
            self._resolver,
            c.url,
            timeout=self._timeout,
            allow_private=self._allow_private,
            ports=methods.AUTHORIZED_PORTS | {c.port},
        )
        v = methods.check_website(ch, fetched, to_epoch(self._clock.now()))
        return Result(ok=v.ok, detail="" if v.ok else v.reason)

    def _validator(self, port: int) -> Validator:
        return Validator(
            resolver=self._resolver,
            http_port=port,
            allow_private=self._allow_private,
            timeout=self._timeout,
        )

    def statistics(self) -> CheckerStatistics:
        return CheckerStatistics(
            requests=self._requests,
            checks=self._checks,
            passed=self._passed,
            failed=self._failed,
            running=int(self._limit.borrowed_tokens),
            refused_attempts=self._refused,
        )


def _challenge(c: Check, method: DcvMethod) -> DcvChallenge:
    """The challenge as the primary holds it, as far as the pure checks read it."""
    return DcvChallenge(
        id="",
        org_id="",
        domain=c.name,
        method=method,
        random_value=c.expect,
        created_at=0,
        expires_at=0,
        actor="",
        record_name=c.record,
        url=c.url,
    )


_PERFORM: dict[str, Callable[[Checker, Check], Awaitable[Result]]] = {
    "dns-01": Checker._dns01,
    "http-01": Checker._http01,
    "dns-change": Checker._dns_change,
    "website-change": Checker._website_change,
}
