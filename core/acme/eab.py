"""External Account Binding credentials: a kid and an HMAC key, bound to one hanko
account, organization, profile and (optionally) licence.

The HMAC key is derived, not stored: HMAC-SHA256 of the deployment's `[acme]
eab_secret` over the kid and a random salt. A copy of the store alone yields no key;
the secret file alone yields none either (the salts are in the store).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from collections.abc import Callable

import msgspec

from core.acme.jws import b64encode
from core.base.clock import from_epoch
from core.base.errors import NotFound, PolicyError
from core.base.fields import Identifier
from core.store import EabRecord, WriteTxn

KID_PREFIX = "eab_"


class EabIn(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    account: Identifier
    organization: Identifier
    profile: str  # what an order naming no profile gets
    profiles: list[str] = msgspec.field(default_factory=list)  # further ones it may ask for
    license: Identifier | None = None


class EabOut(msgspec.Struct, frozen=True, kw_only=True):
    kid: str
    account: str
    organization: str
    profile: str
    profiles: list[str]
    license: str | None
    created_at: dt.datetime
    created_by: str
    acme_account: str | None
    revoked_at: dt.datetime | None


class CreatedEab(msgspec.Struct, frozen=True, kw_only=True):
    kid: str
    hmac_key: str  # base64url, shown once
    directory: str
    credential: EabOut


def hmac_key(master: bytes, kid: str, salt: bytes) -> bytes:
    return hmac.new(master, b"hanko eab\0" + kid.encode() + b"\0" + salt, hashlib.sha256).digest()


def new_salt(
    master: bytes, kid: str, token: Callable[[int], bytes] = secrets.token_bytes
) -> tuple[bytes, str]:
    """A random salt and the HMAC key it gives, base64url. A key starting with "-"
    reads as an option to certbot's and lego's argument parsers (one key in 64), so
    such a salt is drawn again."""
    while True:
        salt = token(16)
        key = b64encode(hmac_key(master, kid, salt))
        if not key.startswith("-"):
            return salt, key


def eab_out(rec: EabRecord) -> EabOut:
    return EabOut(
        kid=rec.kid,
        account=rec.account,
        organization=rec.organization,
        profile=rec.profile,
        profiles=rec.allowed_profiles,
        license=rec.license or None,
        created_at=from_epoch(rec.created_at),
        created_by=rec.created_by,
        acme_account=rec.acme_account or None,
        revoked_at=from_epoch(rec.revoked_at) if rec.revoked_at else None,
    )


def create(
    body: EabIn,
    *,
    master: bytes,
    profiles: frozenset[str],
    directory: str,
    now: int,
    actor: str,
) -> Callable[[WriteTxn], CreatedEab]:
    """The store op making a credential for an organization of the account."""
    for name in (body.profile, *body.profiles):
        if name not in profiles:
            known = ", ".join(sorted(profiles))
            raise PolicyError("profile_unknown", f"no profile named {name!r} (known: {known})")
    kid = KID_PREFIX + secrets.token_hex(10)
    salt, key = new_salt(master, kid)
    rec = EabRecord(
        kid=kid,
        salt=salt,
        account=body.account,
        organization=body.organization,
        profile=body.profile,
        profiles=[p for p in dict.fromkeys(body.profiles) if p != body.profile],
        license=body.license or "",
        created_at=now,
        created_by=actor,
    )

    def op(txn: WriteTxn) -> CreatedEab:
        org = txn.get_org(body.organization)
        if org is None or org.account != body.account:
            raise NotFound(f"no organization {body.organization!r} in account {body.account!r}")
        if body.license is not None:
            lic = txn.get_license(body.license)
            if lic is None or lic.account != body.account:
                raise NotFound(f"no licence {body.license!r} in account {body.account!r}")
        txn.put_eab(rec, at_us=now * 1_000_000, actor=actor)
        return CreatedEab(kid=kid, hmac_key=key, directory=directory, credential=eab_out(rec))

    return op


def revoke(kid: str, *, now: int, actor: str) -> Callable[[WriteTxn], EabOut]:
    def op(txn: WriteTxn) -> EabOut:
        return eab_out(txn.revoke_eab(kid, at=now, at_us=now * 1_000_000, actor=actor))

    return op
