"""The authenticator against a real LMDB store, with the clock and the monotonic time
injected: expiry, revocation, client-certificate binding and the rate limit."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path
from typing import Any

import pytest

from core.access import keys
from core.api.auth import ADMIN_TOKEN_ID, Authenticator
from core.api.router import HttpError
from core.base.clock import FixedClock, to_epoch
from core.store import AccountRecord, LmdbStore, Store

START = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
ADMIN_SECRET = "admin-secret-for-this-test"


class Ticker:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = LmdbStore(tmp_path / "lmdb", create=True, map_size=64 << 20)

    def accounts(txn: Any) -> None:
        for name in ("acme", "kanto"):
            txn.put_account(AccountRecord(id=name, name=name, created_at=0))

    s.write(accounts)
    return s


def scope(secret: str, client: tuple[str, int] = ("127.0.0.1", 5000)) -> dict[str, Any]:
    return {"headers": [(b"authorization", f"Bearer {secret}".encode())], "client": client}


def make(store: Store, clock: FixedClock, **fields: Any) -> keys.CreatedKey:
    op = keys.create(keys.KeyIn(**fields), now=to_epoch(clock.now()), actor="test")
    return store.write(op)


def refusal(auth: Authenticator, sc: dict[str, Any]) -> tuple[int, str]:
    with pytest.raises(HttpError) as err:
        auth.principal(sc)
    return err.value.status, err.value.code


def test_a_key_acts_for_its_accounts_until_it_expires_or_is_revoked(store: Store) -> None:
    clock = FixedClock(START)
    auth = Authenticator(store, clock, admin_token=ADMIN_SECRET)
    key = make(store, clock, role="issuer", accounts=["acme", "kanto"], expires_in="1h")
    who = auth.principal(scope(key.secret))
    assert (who.id, who.role, who.accounts) == (key.id, "issuer", frozenset({"acme", "kanto"}))
    assert who.can("issue")
    assert not who.can("admin")
    clock.advance(dt.timedelta(minutes=59))
    assert auth.principal(scope(key.secret)).id == key.id
    clock.advance(dt.timedelta(minutes=1))
    assert refusal(auth, scope(key.secret)) == (401, "key_expired")

    other = make(store, clock, role="reader", accounts=["acme"])
    assert auth.principal(scope(other.secret)).can("read")
    store.write(keys.revoke(other.id, now=to_epoch(clock.now()), actor="test"))
    assert refusal(auth, scope(other.secret)) == (401, "unauthenticated")
    assert refusal(auth, scope("hks_not-a-key")) == (401, "unauthenticated")
    assert refusal(auth, {"headers": [], "client": None}) == (401, "unauthenticated")
    admin = auth.principal(scope(ADMIN_SECRET))
    assert (admin.id, admin.accounts) == (ADMIN_TOKEN_ID, None)
    assert auth.statistics().expired == 1


def test_only_the_hash_of_a_secret_is_stored(store: Store) -> None:
    key = make(store, FixedClock(START), role="reader", accounts=["acme"])
    with store.read() as txn:
        rec = txn.get_api_key(key.id)
    assert rec is not None
    assert rec.secret_sha256 == hashlib.sha256(key.secret.encode()).digest()
    raw = (Path(store.path) / "data.mdb").read_bytes()
    assert key.secret.encode() not in raw


def test_a_key_bound_to_a_certificate_needs_that_certificate(store: Store) -> None:
    clock = FixedClock(START)
    fingerprint = hashlib.sha256(b"portal-1 certificate").digest()
    peers = {("127.0.0.1", 1): fingerprint, ("127.0.0.1", 2): b"\0" * 32}
    auth = Authenticator(
        store,
        clock,
        admin_token=ADMIN_SECRET,
        peer_certificate=lambda sc: peers.get(sc["client"]),
    )
    key = make(store, clock, role="reader", accounts=["acme"], client_cert_sha256=fingerprint.hex())
    assert auth.principal(scope(key.secret, ("127.0.0.1", 1))).id == key.id
    for client in (("127.0.0.1", 2), ("127.0.0.1", 3)):
        assert refusal(auth, scope(key.secret, client)) == (403, "client_certificate_required")


def test_the_rate_is_a_token_bucket_with_retry_after(store: Store) -> None:
    clock, ticker = FixedClock(START), Ticker()
    auth = Authenticator(store, clock, admin_token=ADMIN_SECRET, monotonic=ticker)
    key = make(store, clock, role="reader", accounts=["acme"], rate=2.0)
    assert [auth.principal(scope(key.secret)).id for _ in range(2)] == [key.id] * 2
    with pytest.raises(HttpError) as err:
        auth.principal(scope(key.secret))
    assert (err.value.status, err.value.code) == (429, "rate_limited")
    assert (b"retry-after", b"1") in err.value.headers
    ticker.now += 0.5  # one more token
    assert auth.principal(scope(key.secret)).id == key.id
    assert refusal(auth, scope(key.secret)) == (429, "rate_limited")
