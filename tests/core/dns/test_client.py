"""The DNS client and the CAA lookup against real servers: Unbound validating in front
of NSD (the session's lab, bench/dns_lab.py) for signed, unsigned, bogus and broken
zones; a resolver that never answers; nobody listening; an answer too large for UDP
asked again over TCP; CNAMEs; tree climbing, each parent asked once."""

from __future__ import annotations

import socket
import time

import pytest
import trio

from bench.dns_lab import DnsLab
from core.dns.caa import CaaRecord
from core.dns.caa_lookup import Found, relevant_sets
from core.dns.client import DnsError
from core.dns.resolver import DnsSettings, Resolver
from tests.conftest import CAA_IDENTITY
from tests.dns_server import DnsServer

OURS = CaaRecord(0, "issue", CAA_IDENTITY)


def resolver(address: str, timeout: float = 3.0, retries: int = 1) -> Resolver:
    return Resolver(DnsSettings(server=address, timeout=timeout, retries=retries))


def caa(r: Resolver, *names: str) -> list[tuple[tuple[CaaRecord, ...], bool] | DnsError]:
    async def ask() -> list[tuple[tuple[CaaRecord, ...], bool] | DnsError]:
        return await r.caa_many(list(names))

    return trio.run(ask)


def test_signed_answers_are_authenticated_unsigned_ones_are_not(lab: DnsLab) -> None:
    signed, unsigned = caa(resolver(lab.resolver), "signed.jp", "plain.jp")
    assert signed == ((OURS,), True)
    assert unsigned == ((OURS,), False)


def test_bogus_signatures_and_servfail_are_failures_never_empty_answers(lab: DnsLab) -> None:
    bogus, broken = caa(resolver(lab.resolver), "bogus.jp", "broken.jp")
    assert isinstance(bogus, DnsError)
    assert "SERVFAIL" in bogus.message
    assert isinstance(broken, DnsError)
    assert "SERVFAIL" in broken.message
    # Unbound said why: the signature did not verify.
    assert "validation failure <bogus.jp. CAA IN>" in (lab.dir / "unbound.log").read_text()


def test_a_resolver_that_never_answers_is_a_timeout() -> None:
    silent = DnsServer()
    try:
        silent.set("a.jp", "CAA", "TIMEOUT")
        started = time.monotonic()
        [out] = caa(resolver(silent.address, timeout=1.0, retries=2), "a.jp")
        took = time.monotonic() - started
    finally:
        silent.close()
    assert isinstance(out, DnsError)
    assert "no answer" in out.message
    assert silent.asked[("a.jp", "CAA")] == 3  # the first question and two retries
    assert took < 5


def test_nobody_listening_fails_at_once() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    [out] = caa(resolver(f"127.0.0.1:{port}", timeout=30), "a.jp")
    assert isinstance(out, DnsError)


def test_an_answer_too_large_for_udp_comes_over_tcp(lab: DnsLab) -> None:
    values = [f'big.signed.jp. IN CAA 0 issue "ca{i:03}.example{"x" * 40}"' for i in range(60)]
    lab.add("signed.jp", values)
    r = resolver(lab.resolver)
    [out] = caa(r, "big.signed.jp")
    assert not isinstance(out, DnsError), out
    assert r.client.over_tcp == 1
    records, authenticated = out
    assert len(records) == 60
    assert authenticated


def test_cnames_are_followed(lab: DnsLab) -> None:
    lab.add("signed.jp", ["alias.signed.jp. IN CNAME target.plain.jp."])
    lab.add("plain.jp", ['target.plain.jp. IN CAA 0 issue "other-ca.example"'])
    [out] = caa(resolver(lab.resolver), "alias.signed.jp")
    assert out == ((CaaRecord(0, "issue", "other-ca.example"),), False)  # plain.jp: insecure


def test_tree_climbing_asks_each_parent_once(lab: DnsLab) -> None:
    r = resolver(lab.resolver)
    names = [f"host{i}.dept.signed.jp" for i in range(5)] + ["example.co.jp", "bogus.jp"]

    async def climb() -> dict[str, Found | DnsError]:
        return await relevant_sets(r, names)

    before = r.client.asked
    found = trio.run(climb)
    # 5 hosts, then dept.signed.jp, signed.jp once; example.co.jp, co.jp, jp; bogus.jp
    assert r.client.asked - before == 5 + 1 + 1 + 3 + 1
    host = found["host3.dept.signed.jp"]
    assert isinstance(host, Found)
    assert (host.found_at, host.records, host.authenticated) == ("signed.jp", (OURS,), True)
    assert host.queried == ("host3.dept.signed.jp", "dept.signed.jp", "signed.jp")
    nothing = found["example.co.jp"]
    assert isinstance(nothing, Found)
    assert nothing.found_at is None
    assert isinstance(found["bogus.jp"], DnsError)


@pytest.mark.parametrize("name", ["under.bogus.jp", "deep.under.broken.jp"])
def test_a_failure_on_the_way_up_fails_the_name(lab: DnsLab, name: str) -> None:
    async def climb() -> dict[str, Found | DnsError]:
        return await relevant_sets(resolver(lab.resolver), [name])

    assert isinstance(trio.run(climb)[name], DnsError)
