"""The configuration of multi-perspective issuance corroboration ([mpic], BR 3.2.2.9):
the remote perspectives every domain validation and CAA decision is sent to, how many
the BR require, and the deadline. The checks a type cannot express live here too."""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import urlsplit

import msgspec

from core.base.units import Duration
from core.config.schedule import perspectives_required

_STRICT = {"forbid_unknown_fields": True, "kw_only": True, "frozen": True}
RIRS = ("AFRINIC", "APNIC", "ARIN", "LACNIC", "RIPE")
CODE = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
REQUIRED_RIRS = 2


class PerspectiveRef(msgspec.Struct, **_STRICT):
    # https://HOST:PORT of a `hanko perspective serve`; its certificate must come from
    # this CA's internal TLS CA and name HOST.
    url: str
    # A name of its own ("ap-tokyo"): logs, metrics and refusals name it.
    code: str
    # The Regional Internet Registry of the network it checks from.
    rir: str


class MpicConfig(msgspec.Struct, **_STRICT):
    # false: validations and CAA decisions stand on the primary's view alone; allowed
    # only while every listener is on loopback (a laboratory, never a public CA).
    enabled: bool = True
    perspectives: list[PerspectiveRef] = msgspec.field(default_factory=list)
    # How many must be asked, at least; 0: what the BR require on the day (2, 3, 4,
    # then 5 from 2026-12-15: core/config/schedule.py).
    required: int = 0
    # A whole corroboration: every perspective asked at once, and waited for this long.
    timeout: Duration = msgspec.field(default_factory=lambda: Duration("10s"))
    # The primary's client certificate from the internal TLS CA (`hanko perspective
    # init` makes it) and the CA perspectives' certificates must come from.
    client_cert: str = "tls/mpic-client.pem"
    client_key: str = "tls/mpic-client.key"
    ca_file: str = "tls/internal-ca.pem"


def required_on(m: MpicConfig, at: dt.datetime) -> int:
    """The perspectives that must be asked at `at`: the configured floor or the BR's."""
    return max(m.required, perspectives_required(at))


def mpic_problems(m: MpicConfig, *, now: dt.datetime, loopback_only: bool) -> list[str]:
    problems: list[str] = []
    if not m.enabled:
        if not loopback_only:
            problems.append(
                "mpic.enabled: false only while every listener is on loopback (a laboratory);"
                " a public CA corroborates every validation (BR 3.2.2.9)"
            )
        return problems
    need = required_on(m, now)
    n = len(m.perspectives)
    if n < need:
        problems.append(
            f"mpic.perspectives: {n} configured, the BR require {need} remote perspectives"
            f" on {now.date().isoformat()}"
        )
    if not 0 <= m.required <= 32:
        problems.append("mpic.required: between 0 (the BR's schedule) and 32")
    codes: set[str] = set()
    urls: set[str] = set()
    for i, p in enumerate(m.perspectives):
        where = f"mpic.perspectives[{i}]"
        if not CODE.match(p.code):
            problems.append(f"{where}.code: lower-case letters, digits and '-' ({p.code!r})")
        elif p.code in codes:
            problems.append(f"{where}.code: {p.code!r} is used by two perspectives")
        codes.add(p.code)
        if p.rir not in RIRS:
            problems.append(f"{where}.rir: one of {', '.join(RIRS)} ({p.rir!r})")
        parts = urlsplit(p.url)
        if parts.scheme != "https" or not parts.hostname or parts.path not in ("", "/"):
            problems.append(f"{where}.url: https://HOST:PORT ({p.url!r})")
        elif p.url.rstrip("/") in urls:
            problems.append(f"{where}.url: {p.url!r} is used by two perspectives")
        urls.add(p.url.rstrip("/"))
    rirs = {p.rir for p in m.perspectives if p.rir in RIRS}
    if m.perspectives and len(rirs) < REQUIRED_RIRS:
        problems.append(
            f"mpic.perspectives: they span {len(rirs)} RIR ({', '.join(sorted(rirs))}); the"
            f" corroborating perspectives must span at least {REQUIRED_RIRS}"
        )
    if not 1 <= m.timeout.seconds <= 60:
        problems.append("mpic.timeout: between 1s and 60s")
    return problems
