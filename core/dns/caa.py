"""CAA (RFC 8659, with RFC 8657's account and method parameters): may this CA issue for
a name, given the relevant CAA record set? Pure: the lookup (core/dns/caa_lookup.py)
finds the record set, climbing from the name towards its TLD, CNAMEs followed by the
resolver; this decides on it.

- No relevant record set, or one with no `issue` / `issuewild` property: permitted.
- An unknown property with the critical flag (128): refused, whatever else it says.
- A wildcard name is decided on `issuewild` properties when the set has any, else on
  `issue`; any other name on `issue` only.
- A property permits when its issuer domain is one of the CA's `identities` (case
  folded) and its parameters allow: `accounturi` must equal the requester's ACME
  account URL (a request that is no ACME order never matches one), `validationmethods`
  must list the method that validated the name ("ca-" prefixed or not). Other
  parameters are ignored.
- `issue ";"` (no issuer domain) permits no one; a value that does not parse permits
  no one either.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence

import msgspec

CRITICAL = 128
# Properties a CA knows (RFC 8659, RFC 8657, and those registered for other purposes):
# only an unknown one with the critical flag stops issuance.
_KNOWN = frozenset(
    ("issue", "issuewild", "iodef", "issuemail", "issuevmc", "contactemail", "contactphone")
)
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_DOMAIN = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*\.?$")
_TAG = re.compile(r"^[A-Za-z0-9]+$")


class CaaRecord(msgspec.Struct, frozen=True):
    flags: int
    tag: str
    value: str

    def text(self) -> str:
        return f'{self.flags} {self.tag} "{self.value}"'


class Request(msgspec.Struct, frozen=True, kw_only=True):
    """What is asked of the CA for one name."""

    name: str  # the name without "*."
    wildcard: bool = False
    account_uri: str | None = None  # the ACME account's URL; None: not an ACME order
    method: str | None = None  # the validation method of the name ("http-01", "dns-change"...)


class Decision(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    wildcard: bool
    permitted: bool
    reason: str  # a sentence for refusals and the audit log
    found_at: str | None  # where the relevant record set was (None: none)
    records: tuple[CaaRecord, ...] = ()
    iodef: tuple[str, ...] = ()  # where the domain owner wants violations reported
    authenticated: bool = False  # the answer was DNSSEC-validated (AD)
    checked_at: int = 0
    matched: str | None = None  # the property that permitted
    # The remote perspectives' quorum that corroborated it ("5/6, RIRs APNIC, ARIN");
    # "": not asked (MPIC off, or a refusal).
    corroboration: str = ""


def _identities(identities: Iterable[str]) -> frozenset[str]:
    return frozenset(i.lower().rstrip(".") for i in identities)


@functools.lru_cache(maxsize=4096)
def parse_issue(value: str) -> tuple[str, dict[str, str]] | None:
    """An issue / issuewild value: (issuer domain, parameters), the domain "" for none.
    None when it does not parse (RFC 8659 4.2). Cached: the same few values are on many
    names (callers must not change the parameters it returns)."""
    domain, _, rest = value.partition(";")
    domain = domain.strip()
    if domain and not _DOMAIN.match(domain):
        return None
    params: dict[str, str] = {}
    for part in rest.split(";"):
        part = part.strip()  # noqa: PLW2901
        if not part:
            continue
        tag, eq, val = part.partition("=")
        tag, val = tag.strip(), val.strip()
        if not eq or not _TAG.match(tag) or any(c.isspace() for c in val) or not val:
            return None
        params[tag.lower()] = val
    return domain.lower().rstrip("."), params


def _method_listed(method: str | None, listed: str) -> bool:
    """RFC 8657 asks CA-specific method names to start with "ca-": a record may name
    hanko's methods with it or without ("ca-dns-change" or "dns-change")."""
    if not method:
        return False
    want = method.removeprefix("ca-")
    return any(m.strip().removeprefix("ca-") == want for m in listed.split(","))


def decide(
    request: Request,
    records: Sequence[CaaRecord],
    found_at: str | None,
    *,
    identities: Iterable[str],
    checked_at: int = 0,
    authenticated: bool = False,
) -> Decision:
    """`checked_at` and `authenticated`: when the records were looked up and whether
    their answers were DNSSEC-validated, carried into the decision for the audit log."""
    ids = identities if isinstance(identities, frozenset) else _identities(identities)
    iodef = tuple(r.value for r in records if r.tag.lower() == "iodef")

    def result(permitted: bool, reason: str, matched: str | None = None) -> Decision:
        return Decision(
            name=request.name,
            wildcard=request.wildcard,
            permitted=permitted,
            reason=reason,
            found_at=found_at,
            records=tuple(records),
            iodef=iodef,
            authenticated=authenticated,
            checked_at=checked_at,
            matched=matched,
        )

    if not records:
        return result(True, "no CAA record set applies: any CA may issue")
    for r in records:
        if r.flags & CRITICAL and r.tag.lower() not in _KNOWN:
            return result(False, f"{found_at} has the critical CAA property {r.text()}")
    issue = [r for r in records if r.tag.lower() == "issue"]
    wild = [r for r in records if r.tag.lower() == "issuewild"]
    relevant = wild if request.wildcard and wild else issue
    if not relevant:
        return result(True, f"{found_at}'s CAA records restrict no issuance")
    for r in relevant:
        parsed = parse_issue(r.value)
        if parsed is None:
            continue
        domain, params = parsed
        if not domain or domain not in ids:
            continue
        uri = params.get("accounturi")
        if uri is not None and uri != request.account_uri:
            continue
        methods = params.get("validationmethods")
        if methods is not None and not _method_listed(request.method, methods):
            continue
        return result(True, f"permitted by {r.text()} at {found_at}", matched=r.text())
    shown = ", ".join(r.text() for r in relevant)
    return result(False, f"CAA at {found_at} permits only: {shown}")
