"""CAA in the issuance cycle: after a batch is prepared (decided, priced, linted) and
before anything is signed, every name of every certificate is checked (all of the
batch's lookups together); a certificate with a name CAA forbids is refused with the
record and where it was found, one whose lookup failed is refused as retryable, and
nothing is signed or charged for either. The decisions travel with the certificate to
its commit, where each is written to the audit log."""

from __future__ import annotations

import datetime as dt

import msgspec

from core.base.clock import from_epoch
from core.base.errors import CaaForbidden, HankoError, LookupFailed
from core.dns.caa import Decision, Request
from core.dns.resolver import DnsError
from core.issuance.caa_check import CaaChecker
from core.issuance.prepare import Prepared
from core.store import WriteTxn


def requests_for(p: Prepared, account_uri: str | None) -> list[Request]:
    methods = p.decision.methods or ("",) * len(p.decision.names)
    out = []
    for name, method in zip(p.decision.names, methods, strict=True):
        wildcard = name.startswith("*.")
        out.append(
            Request(
                name=name[2:] if wildcard else name,
                wildcard=wildcard,
                account_uri=account_uri,
                method=method or None,
            )
        )
    return out


async def screen(
    checker: CaaChecker, prepared: list[tuple[int, Prepared]], *, account_uri: str | None
) -> tuple[list[tuple[int, Prepared]], list[tuple[int, HankoError]]]:
    """(what may be signed, each with its decisions; what is refused)."""
    spans: list[tuple[int, int]] = []
    requests: list[Request] = []
    for _, p in prepared:
        mine = requests_for(p, account_uri)
        spans.append((len(requests), len(requests) + len(mine)))
        requests += mine
    results = await checker.check(requests)
    passed: list[tuple[int, Prepared]] = []
    refused: list[tuple[int, HankoError]] = []
    for (i, p), (start, end) in zip(prepared, spans, strict=True):
        mine_results = results[start:end]
        failure = refusal(mine_results)
        if failure is not None:
            refused.append((i, failure))
            continue
        decisions = tuple(d for d in mine_results if isinstance(d, Decision))
        passed.append((i, msgspec.structs.replace(p, caa=decisions)))
    return passed, refused


def refusal(results: list[Decision | HankoError]) -> HankoError | None:
    """The error for a certificate whose names are decided so; None when every name
    is permitted. A forbidding record outranks a failed lookup: it will not change;
    the remote perspectives' refusal is given as they made it."""
    for r in results:
        if isinstance(r, Decision) and not r.permitted:
            shown = "*." + r.name if r.wildcard else r.name
            return CaaForbidden(
                shown,
                r.found_at or "",
                "; ".join(rec.text() for rec in r.records),
                r.reason,
            )
    for r in results:
        if isinstance(r, DnsError):
            return LookupFailed(f"{r.message}; CAA could not be checked, try again later")
    for r in results:
        if isinstance(r, HankoError):
            return r
    return None


def record(txn: WriteTxn, p: Prepared, serial_hex: str, *, at_us: int, actor: str) -> None:
    """The certificate's CAA decisions in the audit log: one entry per record set found
    (the names decided on it together; most certificates have one)."""
    groups: dict[tuple[object, ...], list[str]] = {}
    for d in p.caa:
        key = (d.found_at, d.records, d.permitted, d.matched, d.authenticated, d.checked_at)
        groups.setdefault(key, []).append(("*." if d.wildcard else "") + d.name)
    for d in p.caa:
        key = (d.found_at, d.records, d.permitted, d.matched, d.authenticated, d.checked_at)
        names = groups.pop(key, None)
        if names is not None:
            txn.audit(
                at_us=at_us,
                actor=actor,
                action="caa.check",
                subject=serial_hex,
                detail=detail(d, names),
            )


def detail(d: Decision, names: list[str] | None = None) -> dict[str, str]:
    checked = from_epoch(d.checked_at).astimezone(dt.UTC).isoformat()
    return {
        "names": " ".join(names or [("*." if d.wildcard else "") + d.name]),
        "permitted": "yes" if d.permitted else "no",
        "found_at": d.found_at or "",
        "records": "; ".join(r.text() for r in d.records),
        "matched": d.matched or "",
        "iodef": " ".join(d.iodef),
        "dnssec": "validated" if d.authenticated else "insecure",
        "checked_at": checked,
        "corroboration": d.corroboration or "not asked",
    }
