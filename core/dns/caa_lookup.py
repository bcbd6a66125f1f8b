"""The CAA lookup of RFC 8659 section 3: from each name towards its TLD, the first
non-empty CAA record set is the relevant one (the resolver follows CNAMEs at each
step). Many names are looked up together, a level at a time: every name's own label
in one batch of questions, then the parents of those with no records (each parent
asked once however many names share it), and so on. A lookup that fails at any step
fails that name's decision: it is never permission to issue."""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from core.dns.caa import CaaRecord
from core.dns.resolver import CaaAnswer, DnsError, Resolver


class Found(msgspec.Struct, frozen=True):
    found_at: str | None  # where the relevant record set was; None: nowhere up to the TLD
    records: tuple[CaaRecord, ...]
    authenticated: bool  # every answer on the way was validated by DNSSEC
    queried: tuple[str, ...]  # the names asked, in order


async def relevant_sets(resolver: Resolver, names: Iterable[str]) -> dict[str, Found | DnsError]:
    """For each name (lower case, without "*."), its relevant record set or the failure."""
    at: dict[str, str] = {}
    for name in names:
        n = name.rstrip(".").lower()
        at[n] = n
    validated = dict.fromkeys(at, True)
    asked: dict[str, list[str]] = {n: [] for n in at}
    answers: dict[str, CaaAnswer | DnsError] = {}
    result: dict[str, Found | DnsError] = {}
    while at:
        todo = sorted({here for here in at.values() if here not in answers})
        if todo:
            for here, answer in zip(todo, await resolver.caa_many(todo), strict=True):
                answers[here] = answer
        moving: dict[str, str] = {}
        for name, here in at.items():
            answer = answers[here]
            asked[name].append(here)
            if isinstance(answer, DnsError):
                result[name] = DnsError(f"the CAA lookup of {here} failed: {answer.message}")
                continue
            records, authenticated = answer
            validated[name] = validated[name] and authenticated
            if records:
                result[name] = Found(here, records, validated[name], tuple(asked[name]))
                continue
            parent = here.partition(".")[2]
            if not parent:
                result[name] = Found(None, (), validated[name], tuple(asked[name]))
                continue
            moving[name] = parent
        at = moving
    return result
