"""`[ct]` checked against the log policy (run by `hanko check-config`): every log's
key is a public key a log may have, its URL is http(s), and each profile with CT on
can get the SCTs its validity needs from the logs listed, every log answering."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from core.base.errors import PolicyError
from core.config import Config
from core.config.schedule import in_force
from core.ct.policy import Log, can_satisfy, required

DAY = 86400


def _epoch(value: str | None, where: str, problems: list[str]) -> int | None:
    if value is None:
        return None
    try:
        at = dt.datetime.fromisoformat(value)
    except ValueError:
        problems.append(f"{where}: not an RFC 3339 time: {value!r}")
        return None
    if at.tzinfo is None:
        problems.append(f"{where}: needs a time zone (e.g. 2027-01-01T00:00:00Z)")
        return None
    return int(at.timestamp())


def logs(cfg: Config, problems: list[str] | None = None) -> list[Log]:
    """The configured logs; what is wrong with them goes to `problems`."""
    problems = problems if problems is not None else []
    out: list[Log] = []
    for i, entry in enumerate(cfg.ct.logs):
        where = f"ct.logs[{i}]"
        if urlsplit(entry.url).scheme not in ("http", "https"):
            problems.append(f"{where}.url: must be an http(s) URL")
        try:
            der = base64.b64decode(entry.key, validate=True)
            key = serialization.load_der_public_key(der)
        except (binascii.Error, ValueError):
            problems.append(f"{where}.key: not a base64 DER SubjectPublicKeyInfo")
            continue
        if not (
            isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1"
        ) and not (isinstance(key, rsa.RSAPublicKey) and key.key_size >= 2048):
            problems.append(f"{where}.key: a CT log key is ECDSA P-256 or RSA of 2048 bits or more")
            continue
        out.append(
            Log(
                url=entry.url.rstrip("/"),
                key=der,
                operator=entry.operator,
                not_after_start=_epoch(entry.not_after_start, f"{where}.not_after_start", problems),
                not_after_end=_epoch(entry.not_after_end, f"{where}.not_after_end", problems),
                submit_final=entry.submit_final,
            )
        )
    return out


def problems(cfg: Config, *, now: dt.datetime) -> list[str]:
    found: list[str] = []
    listed = logs(cfg, found)
    if not cfg.ct.logs:
        return [
            f"issuance.profiles.{name}.ct: true needs CT logs in [ct] ([[ct.logs]])"
            for name, prof in cfg.issuance.profiles.items()
            if prof.ct is True
        ]
    for name, prof in cfg.issuance.profiles.items():
        if prof.ct is False:
            continue
        try:
            rule = in_force(cfg.issuance.validity_schedule, now)
        except PolicyError as exc:
            return [*found, exc.message]
        days = prof.default_validity_days or rule.max_days - 1
        not_after = int(now.timestamp()) + days * DAY
        if not can_satisfy(listed, days * DAY, not_after):
            need = required(days * DAY)
            found.append(
                f"issuance.profiles.{name}: its certificates ({days} days) need {need} SCTs"
                " from at least 2 log operators, and the [ct] logs cannot give them"
            )
    return found
