"""Making and revoking API keys: what cannot make a key, and what a key's record holds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from core.access import keys
from core.access.roles import CAPABILITIES, Principal
from core.base.errors import NotFound, PolicyError
from core.store import AccountRecord, LmdbStore, Store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = LmdbStore(tmp_path / "lmdb", create=True, map_size=64 << 20)
    s.write(lambda txn: txn.put_account(AccountRecord(id="acme", name="acme", created_at=0)))
    return s


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"role": "admin", "accounts": ["acme"]}, "invalid_key_scope"),
        ({"role": "admin"}, "invalid_key_scope"),
        ({"role": "issuer", "all_accounts": True}, "invalid_key_scope"),
        ({"role": "reader"}, "invalid_key_scope"),
        ({"role": "issuer", "accounts": ["acme"], "expires_in": "10"}, "invalid_key_expiry"),
        ({"role": "issuer", "accounts": ["acme"], "expires_in": "20000d"}, "invalid_key_expiry"),
        ({"role": "issuer", "accounts": ["acme"], "rate": 0}, "invalid_key_rate"),
        (
            {"role": "issuer", "accounts": ["acme"], "client_cert_sha256": "ab"},
            "invalid_client_cert",
        ),
    ],
)
def test_keys_that_cannot_be_made(fields: dict[str, Any], code: str) -> None:
    with pytest.raises(PolicyError) as err:
        keys.create(keys.KeyIn(**fields), now=0, actor="test")
    assert err.value.code == code


def test_a_key_for_an_unknown_account_is_refused_and_nothing_is_stored(store: Store) -> None:
    op = keys.create(keys.KeyIn(role="issuer", accounts=["acme", "nobody"]), now=0, actor="test")
    with pytest.raises(NotFound):
        store.write(op)
    with store.read() as txn:
        assert list(txn.iter_api_keys()) == []


def test_a_key_is_stored_and_revoked_with_its_audit_entries(store: Store) -> None:
    op = keys.create(
        keys.KeyIn(role="issuer", accounts=["acme"], expires_in="90d", rate=5, label="portal"),
        now=1_000,
        actor="cli",
    )
    created = store.write(op)
    assert created.key.expires_at is not None
    assert created.key.expires_at.timestamp() == 1_000 + 90 * 86400
    assert (created.key.rate, created.key.label, created.key.accounts) == (5.0, "portal", ["acme"])
    again = store.write(keys.revoke(created.id, now=2_000, actor="cli"))
    assert again.revoked_at is not None
    assert (
        store.write(keys.revoke(created.id, now=3_000, actor="cli")).revoked_at == again.revoked_at
    )
    with pytest.raises(NotFound):
        store.write(keys.revoke("key_nobody", now=3_000, actor="cli"))
    with store.read() as txn:
        actions = [(e.action, e.subject) for e in txn.iter_audit() if e.actor == "cli"]
        assert txn.api_key_by_secret(keys.secret_digest(created.secret.encode())) is None
    assert actions == [("api_key.create", created.id), ("api_key.revoke", created.id)]


def test_roles_are_capability_sets() -> None:
    admin = Principal(id="a", role="admin", accounts=None)
    reader = Principal(id="r", role="reader", accounts=frozenset({"acme"}))
    assert admin.sees("anyone")
    assert (reader.sees("acme"), reader.sees("kanto")) == (True, False)
    assert not any(p.can("issue") for p in (admin, reader))
    assert CAPABILITIES["issuer"] >= CAPABILITIES["reader"]
