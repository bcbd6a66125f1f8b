"""An issuer's life after `hanko ca issuer create`: activated for profiles, retired
(it issues nothing more and keeps signing OCSP and CRLs until its last certificate has
expired, BR 4.9.7 and 4.9.10), revoked by its root (onto the root CRL). Each change
rewrites the `[[ca.issuers]]` tables of the configuration file, checked whole before it
replaces the file, and leaves an audit entry.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import msgspec
from cryptography import x509

from core.base.clock import Clock, from_epoch, to_epoch
from core.base.errors import ConfigError
from core.base.files import write_atomically
from core.ca.issuer import key_id
from core.ca.issuer_ceremony import IssuerRefused, audit
from core.ca.root_crl import CA_REASONS, reason_code
from core.config import Config, check_config
from core.config.edit import with_issuers
from core.config.issuers import EVERY, IssuerConfig, ResolvedIssuer, profiles_of
from core.store.configured import open_store
from core.store.records import RevokedCa


def explicit(cfg: Config) -> list[IssuerConfig]:
    """The issuer list as `[[ca.issuers]]` tables: the one-issuer form's issuer made
    explicit with the URLs its certificates carry."""
    out = []
    for r in cfg.issuers():
        i = r.config
        if r.legacy:
            i = msgspec.structs.replace(i, crl_url=r.crl_url, issuer_url=r.issuer_url)
        out.append(i)
    return out


def write_issuers(path: Path, cfg: Config, issuers: list[IssuerConfig]) -> Config:
    """Replace the file's issuer tables with `issuers`, after checking the whole new
    file; returns the new configuration."""
    text = path.read_text()
    mode = path.stat().st_mode & 0o777
    new_text = with_issuers(text, issuers, drop_legacy=bool(cfg.ca.issuer_cert))
    trial = path.with_name(f".{path.name}.new")
    try:
        trial.write_text(new_text)
        os.chmod(trial, mode)
        checked, problems = check_config(trial)
    finally:
        trial.unlink(missing_ok=True)
    if checked is None:
        raise ConfigError([f"the issuer change would break {path}: {p}" for p in problems])
    write_atomically(path, [new_text.encode()])
    os.chmod(path, mode)
    return msgspec.structs.replace(checked, base_dir=cfg.base_dir)


def _find(issuers: list[IssuerConfig], name: str) -> int:
    for n, i in enumerate(issuers):
        if i.name == name:
            return n
    raise IssuerRefused(f"no issuer named {name!r} (hanko ca issuer list)")


def activate(
    path: Path, cfg: Config, name: str, profiles: list[str] | None, *, clock: Clock
) -> IssuerConfig:
    issuers = explicit(cfg)
    n = _find(issuers, name)
    current = issuers[n]
    if current.retired_at is not None:
        raise IssuerRefused(f"issuer {name} is retired: a retired issuer is never activated again")
    unknown = sorted(set(profiles or ()) - set(cfg.issuance.profiles))
    if unknown:
        raise IssuerRefused(f"no such profile: {', '.join(unknown)}")
    issuers[n] = msgspec.structs.replace(current, profiles=profiles or [EVERY])
    write_issuers(path, cfg, issuers)
    audit(
        cfg, clock.now(), "ca.issuer_activated", name, {"profiles": ",".join(issuers[n].profiles)}
    )
    return issuers[n]


def retire(
    path: Path, cfg: Config, name: str, *, clock: Clock, force: bool = False
) -> IssuerConfig:
    issuers = explicit(cfg)
    n = _find(issuers, name)
    if issuers[n].retired_at is not None:
        raise IssuerRefused(f"issuer {name} is retired already")
    now = clock.now().replace(microsecond=0)
    issuers[n] = msgspec.structs.replace(issuers[n], profiles=[], retired_at=now)
    if not force:
        _still_served(cfg, issuers, name)
    write_issuers(path, cfg, issuers)
    audit(cfg, now, "ca.issuer_retired", name, {})
    return issuers[n]


def _still_served(cfg: Config, issuers: list[IssuerConfig], name: str) -> None:
    """Refuse a retirement that leaves a profile with no active issuer."""
    served: set[str] = set()
    for i in issuers:
        if i.retired_at is None:
            served |= set(cfg.issuance.profiles) if EVERY in i.profiles else set(i.profiles)
    orphaned = sorted(set(cfg.issuance.profiles) - served)
    if orphaned:
        raise IssuerRefused(
            f"retiring {name} leaves no active issuer for {', '.join(orphaned)}: activate "
            "another first (or --force to stop issuing them)"
        )


def revoke_issuer(
    path: Path, cfg: Config, name: str, reason: str, *, clock: Clock
) -> tuple[IssuerConfig, bool]:
    """Put the issuer's certificate on its root's CRL (retiring it if it was not); the
    caller re-signs the root CRL. True when it was not revoked before."""
    if reason not in CA_REASONS:
        raise IssuerRefused(f"--reason: one of {', '.join(CA_REASONS)} (BR 7.2.2)")
    issuers = explicit(cfg)
    n = _find(issuers, name)
    now = clock.now().replace(microsecond=0)
    if issuers[n].retired_at is None:
        issuers[n] = msgspec.structs.replace(issuers[n], profiles=[], retired_at=now)
        write_issuers(path, cfg, issuers)
    cert = x509.load_pem_x509_certificate(cfg.path(issuers[n].cert).read_bytes())
    serial = cert.serial_number.to_bytes((cert.serial_number.bit_length() + 7) // 8, "big")
    record = RevokedCa(
        name=name,
        serial=serial,
        revoked_at=to_epoch(now),
        reason=reason_code(reason),
        not_after=to_epoch(cert.not_valid_after_utc),
    )
    store = open_store(cfg)
    try:
        fresh = store.write(lambda txn: txn.put_revoked_ca(record))
    finally:
        store.close()
    if fresh:
        audit(
            cfg,
            now,
            "ca.issuer_revoked",
            name,
            {"serial": f"{cert.serial_number:x}", "reason": reason},
        )
    return issuers[n], bool(fresh)


def listing(cfg: Config, *, clock: Clock) -> list[dict[str, Any]]:
    """Each issuer's state, key type, profiles, certificates still valid and the last
    expiry (until when a retired one must keep signing status)."""
    now = to_epoch(clock.now())
    store = open_store(cfg, readonly=True)
    try:
        with store.read() as txn:
            valid = txn.valid_by_issuer(now)
            revoked = {ca.name: ca for ca in txn.revoked_cas()}
    finally:
        store.close()
    out = []
    for r in cfg.issuers():
        cert = x509.load_pem_x509_certificate(cfg.path(r.config.cert).read_bytes())
        out.append(_entry(cfg, r, cert=cert, valid=valid, revoked=revoked, now=now))
    return out


def _entry(
    cfg: Config,
    r: ResolvedIssuer,
    *,
    cert: x509.Certificate,
    valid: dict[bytes, tuple[int, int]],
    revoked: dict[str, RevokedCa],
    now: int,
) -> dict[str, Any]:
    i = r.config
    kid = key_id(cert)
    profiles = profiles_of(i, list(cfg.issuance.profiles))
    count, last = valid.get(kid, (0, 0))
    if i.name in revoked:
        state = "revoked"
    elif i.retired_at is not None:
        state = "retired"
    elif profiles:
        state = "active"
    else:
        state = "inactive"
    starts = to_epoch(i.not_before) if i.not_before else None
    ends = to_epoch(i.not_after) if i.not_after else None
    return {
        "name": i.name,
        "state": state,
        "key_type": i.key_type,
        "profiles": sorted(profiles) if state == "active" else [],
        "issuing_now": state == "active"
        and (starts is None or starts <= now)
        and (ends is None or now < ends),
        "subject": cert.subject.rfc4514_string(),
        "serial": f"{cert.serial_number:x}",
        "key_id": kid.hex(),
        "not_after": cert.not_valid_after_utc.isoformat(),
        "certificates_valid": count,
        "last_expiry": from_epoch(last).isoformat() if last else None,
        # A retired issuer signs OCSP and CRLs until its last certificate has expired.
        "status_until": from_epoch(last).isoformat() if last else None,
        "retired_at": i.retired_at.isoformat() if i.retired_at else None,
        "revoked_at": (
            dt.datetime.fromtimestamp(revoked[i.name].revoked_at, dt.UTC).isoformat()
            if i.name in revoked
            else None
        ),
        "crl_url": r.crl_url,
        "issuer_url": r.issuer_url,
    }
