"""The CAA checker of issuance (core/issuance/caa_check.py) against the lab's Unbound:
a permitting decision is reused for at most 8 hours (the clock injected), a refusal
and a failure never; a changed record is seen once the reuse is over."""

from __future__ import annotations

import datetime as dt

import pytest
import trio

from bench.dns_lab import DnsLab
from core.base.clock import FixedClock
from core.dns.caa import Decision, Request
from core.dns.client import DnsError
from core.dns.resolver import DnsSettings, Resolver
from core.issuance.caa_check import CaaChecker
from tests.conftest import CAA_IDENTITY

T0 = dt.datetime(2026, 12, 4, 9, 0, tzinfo=dt.UTC)


def checker(lab: DnsLab, clock: FixedClock, reuse: float = 8 * 3600) -> CaaChecker:
    resolver = Resolver(DnsSettings(server=lab.resolver, timeout=3, retries=1))
    return CaaChecker(resolver, identities=[CAA_IDENTITY], clock=clock, reuse=reuse)


def check(c: CaaChecker, *requests: Request) -> list[Decision | DnsError]:
    async def run() -> list[Decision | DnsError]:
        return await c.check(list(requests))

    return trio.run(run)


def test_a_permit_is_reused_for_8_hours_then_looked_up_again(lab: DnsLab) -> None:
    lab.add("signed.jp", [f'reuse.signed.jp. IN CAA 0 issue "{CAA_IDENTITY}"'])
    clock = FixedClock(T0)
    c = checker(lab, clock)
    [first] = check(c, Request(name="reuse.signed.jp"))
    assert isinstance(first, Decision)
    assert first.permitted
    assert first.authenticated
    # The domain owner turns to another CA.
    lab.replace(
        "signed.jp", "reuse.signed.jp", ['reuse.signed.jp. IN CAA 0 issue "other-ca.example"']
    )
    clock.advance(dt.timedelta(hours=7, minutes=59))
    [again] = check(c, Request(name="reuse.signed.jp"))
    assert again == first  # reused, as the BR allow
    clock.advance(dt.timedelta(minutes=2))
    [after] = check(c, Request(name="reuse.signed.jp"))
    assert isinstance(after, Decision)
    assert not after.permitted
    assert "other-ca.example" in after.reason
    assert c.statistics().reused == 1


def test_refusals_and_failures_are_never_reused(lab: DnsLab) -> None:
    lab.add("signed.jp", ['no.signed.jp. IN CAA 0 issue "other-ca.example"'])
    c = checker(lab, FixedClock(T0))
    for _ in range(2):
        no, failed = check(c, Request(name="no.signed.jp"), Request(name="x.bogus.jp"))
        assert isinstance(no, Decision)
        assert not no.permitted
        assert isinstance(failed, DnsError)
    stats = c.statistics()
    assert (stats.reused, stats.refused, stats.failed) == (0, 2, 2)


def test_the_request_is_the_key_of_a_reuse(lab: DnsLab) -> None:
    """A permit for one account, or for a name, is not one for a wildcard or another
    account (accounturi, issuewild)."""
    lab.add(
        "signed.jp",
        [
            'keyed.signed.jp. IN CAA 0 issue "pki.hanko.example.com; accounturi=https://a/acct/1"',
            'keyed.signed.jp. IN CAA 0 issuewild ";"',
        ],
    )
    c = checker(lab, FixedClock(T0))
    mine = Request(name="keyed.signed.jp", account_uri="https://a/acct/1", method="http-01")
    theirs = Request(name="keyed.signed.jp", account_uri="https://a/acct/2", method="http-01")
    wild = Request(name="keyed.signed.jp", wildcard=True, account_uri="https://a/acct/1")
    first = check(c, mine, theirs, wild)
    second = check(c, mine, theirs, wild)
    assert [getattr(d, "permitted", None) for d in first] == [True, False, False]
    assert [getattr(d, "permitted", None) for d in second] == [True, False, False]
    assert c.statistics().reused == 1


@pytest.mark.parametrize("reuse", [0.0])
def test_reuse_zero_looks_up_every_time(lab: DnsLab, reuse: float) -> None:
    c = checker(lab, FixedClock(T0), reuse=reuse)
    check(c, Request(name="signed.jp"))
    check(c, Request(name="signed.jp"))
    assert c.statistics().reused == 0
    assert c.statistics().decisions == 2


def test_identities_are_required(lab: DnsLab) -> None:
    resolver = Resolver(DnsSettings(server=lab.resolver))
    with pytest.raises(ValueError, match="identities"):
        CaaChecker(resolver, identities=[], clock=FixedClock(T0))
