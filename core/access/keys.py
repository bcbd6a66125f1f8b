"""Making, listing and revoking API keys: the operations `hanko keys` and
/v1/admin/keys share. Each returns a store op for one durable commit."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Callable

import msgspec

from core.access.roles import Role, scope_problem
from core.base.clock import from_epoch
from core.base.errors import NotFound, PolicyError
from core.base.units import Duration
from core.store import ApiKeyRecord, WriteTxn

SECRET_PREFIX = "hks_"  # noqa: S105 - a prefix that lets secret scanners spot a leaked key
ID_PREFIX = "key_"
MAX_LIFETIME = 3650 * 86400


class KeyIn(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    role: Role
    accounts: list[str] = msgspec.field(default_factory=list)
    all_accounts: bool = False
    expires_in: str | None = None  # a duration, "90d"; None: never
    rate: float | None = None  # requests per second; None: unlimited
    client_cert_sha256: str | None = None  # hex SHA-256 of the client certificate (DER)
    label: str = ""


class KeyOut(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    role: str
    accounts: list[str] | None  # None: every account
    created_at: dt.datetime
    created_by: str
    expires_at: dt.datetime | None
    rate: float | None
    client_cert_sha256: str | None
    revoked_at: dt.datetime | None
    label: str


class CreatedKey(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    secret: str  # shown once; only its SHA-256 is kept
    key: KeyOut


def secret_digest(secret: bytes) -> bytes:
    return hashlib.sha256(secret).digest()


def key_out(rec: ApiKeyRecord) -> KeyOut:
    return KeyOut(
        id=rec.id,
        role=rec.role,
        accounts=None if rec.all_accounts else list(rec.accounts),
        created_at=from_epoch(rec.created_at),
        created_by=rec.created_by,
        expires_at=from_epoch(rec.expires_at) if rec.expires_at else None,
        rate=rec.rate or None,
        client_cert_sha256=rec.client_cert_sha256.hex() or None,
        revoked_at=from_epoch(rec.revoked_at) if rec.revoked_at else None,
        label=rec.label,
    )


def _checked(body: KeyIn) -> tuple[list[str], bytes, int]:
    accounts = sorted(set(body.accounts))
    problem = scope_problem(body.role, accounts, body.all_accounts)
    if problem is not None:
        raise PolicyError("invalid_key_scope", problem)
    lifetime = 0
    if body.expires_in is not None:
        try:
            lifetime = int(Duration(body.expires_in).seconds)
        except ValueError as exc:
            raise PolicyError("invalid_key_expiry", f"expires_in: {exc}") from None
        if not 60 <= lifetime <= MAX_LIFETIME:
            raise PolicyError("invalid_key_expiry", "expires_in must be from 1m to 3650d")
    if body.rate is not None and not 0 < body.rate <= 1_000_000:
        raise PolicyError("invalid_key_rate", "rate must be above 0 and at most 1000000 per second")
    fingerprint = b""
    if body.client_cert_sha256 is not None:
        try:
            fingerprint = bytes.fromhex(body.client_cert_sha256.replace(":", ""))
        except ValueError:
            fingerprint = b""
        if len(fingerprint) != 32:
            raise PolicyError(
                "invalid_client_cert", "client_cert_sha256 must be a SHA-256 in hex (64 digits)"
            )
    return accounts, fingerprint, lifetime


def create(body: KeyIn, *, now: int, actor: str) -> Callable[[WriteTxn], CreatedKey]:
    """The op that stores a new key; its result holds the secret, shown once. Raises
    PolicyError (422) for a scope, expiry, rate or certificate that cannot make a key."""
    accounts, fingerprint, lifetime = _checked(body)
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    rec = ApiKeyRecord(
        id=ID_PREFIX + secrets.token_hex(8),
        secret_sha256=secret_digest(secret.encode()),
        role=body.role,
        accounts=accounts,
        all_accounts=body.all_accounts,
        created_at=now,
        created_by=actor,
        expires_at=now + lifetime if lifetime else 0,
        rate=body.rate or 0.0,
        client_cert_sha256=fingerprint,
        label=body.label,
    )

    def op(txn: WriteTxn) -> CreatedKey:
        for account in accounts:
            if txn.get_account(account) is None:
                raise NotFound(f"no account {account!r}")
        txn.put_api_key(rec, at_us=now * 1_000_000, actor=actor)
        return CreatedKey(id=rec.id, secret=secret, key=key_out(rec))

    return op


def revoke(key_id: str, *, now: int, actor: str) -> Callable[[WriteTxn], KeyOut]:
    def op(txn: WriteTxn) -> KeyOut:
        return key_out(txn.revoke_api_key(key_id, at=now, at_us=now * 1_000_000, actor=actor))

    return op
