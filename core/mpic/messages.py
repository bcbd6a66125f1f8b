"""What the primary asks a remote perspective and what it answers, pure: one POST of
a batch of checks under one attempt id, one result per check, in order.

A check carries what the primary saw as well as what to look for, so a perspective
answers the same question: `caa` (may this CA issue for the name, as the primary's
decision says it may), `dns-01` (a TXT record at _acme-challenge.NAME holds
`expect`), `http-01` (http://NAME/.well-known/acme-challenge/TOKEN answers
`expect`), `dns-change` (a TXT record at `record` holds `expect`) and
`website-change` (`url`, its redirects followed as the BR allow, holds `expect`).
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

CheckKind = Literal["caa", "dns-01", "http-01", "dns-change", "website-change"]
KINDS: tuple[CheckKind, ...] = ("caa", "dns-01", "http-01", "dns-change", "website-change")
MAX_CHECKS = 1000  # in one request: a batch of certificates' names
PATH = "/v1/checks"

_Name = Annotated[str, msgspec.Meta(min_length=1, max_length=253)]
_Text = Annotated[str, msgspec.Meta(max_length=2048)]
_STRICT = {"frozen": True, "kw_only": True, "forbid_unknown_fields": True}


class Check(msgspec.Struct, **_STRICT):
    kind: CheckKind
    name: _Name  # the domain name the check is about (without "*.")
    expect: _Text = ""  # the value that proves control (not for caa)
    token: _Text = ""  # http-01
    record: _Text = ""  # dns-change: the TXT record's owner name
    url: _Text = ""  # website-change
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 80  # http-01
    # caa: the request as the primary decided it (RFC 8659, RFC 8657)
    wildcard: bool = False
    account_uri: _Text | None = None
    method: _Text | None = None


class CheckRequest(msgspec.Struct, **_STRICT):
    # New for every corroboration, retries included: a perspective refuses an id it
    # has seen, so no answer is ever carried from one attempt to the next.
    attempt: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{16,64}$")]
    checks: Annotated[list[Check], msgspec.Meta(min_length=1, max_length=MAX_CHECKS)]
    # The CA's issuer domains, as its CAA checks know them ([caa] identities).
    caa_identities: Annotated[list[_Name], msgspec.Meta(max_length=16)] = []


class Result(msgspec.Struct, **_STRICT):
    ok: bool  # the perspective saw what the primary saw: it corroborates
    detail: str = ""  # what it saw instead, or why it could not look


class CheckReply(msgspec.Struct, **_STRICT):
    attempt: str
    perspective: str  # its code
    rir: str
    results: list[Result]


def encode(value: object) -> bytes:
    return msgspec.json.encode(value)


def decode_reply(body: bytes) -> CheckReply:
    return msgspec.json.decode(body, type=CheckReply)
