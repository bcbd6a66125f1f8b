"""The outbox in a real LMDB store: events only for accounts with a webhook, due in
order, settled once (delivered, retried, given up), marks that hold once, pruning that
keeps what is pending, and all of it surviving a reopen."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.store import LmdbStore, Store
from core.store.notify import WebhookRecord


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = LmdbStore(tmp_path / "lmdb", create=True, map_size=1 << 26)
    yield s
    s.close()


def hook(account: str) -> WebhookRecord:
    return WebhookRecord(
        account=account, url="https://h.example/x", salt=b"s", created_at=1, created_by="t"
    )


def test_the_outbox_lifecycle(store: Store, tmp_path: Path) -> None:
    def setup(txn: object) -> tuple[int, int, int]:
        txn.put_webhook(hook("acme"), at_us=1, actor="t")  # type: ignore[attr-defined]
        none = txn.enqueue_event("other", "certificate.issued", {}, at=100)  # type: ignore[attr-defined]
        a = txn.enqueue_event("acme", "certificate.issued", {"serial": "01"}, at=100)  # type: ignore[attr-defined]
        b = txn.enqueue_event("acme", "certificate.revoked", {"serial": "01"}, at=200)  # type: ignore[attr-defined]
        return none, a, b

    none, a, b = store.write(setup)
    assert none == 0  # no webhook, no event
    with store.read() as txn:
        assert [e.seq for e in txn.due_events(150)] == [a]
        assert [e.seq for e in txn.due_events(250)] == [a, b]
        assert b'"type":"certificate.issued"' in txn.get_event(a).body  # type: ignore[union-attr]
    retried = store.write(
        lambda t: t.settle_event(a, now=300, delivered=False, next_at=400, error="500")
    )
    assert (retried.attempts, retried.first_attempt, retried.next_at) == (1, 300, 400)
    with store.read() as txn:
        assert [e.seq for e in txn.due_events(350)] == [b]
    done = store.write(lambda t: t.settle_event(a, now=400, delivered=True, next_at=None))
    assert (done.delivered_at, done.attempts, done.pending) == (400, 2, False)
    gone = store.write(lambda t: t.settle_event(b, now=400, delivered=False, next_at=None))
    assert gone.given_up
    with store.read() as txn:
        assert txn.due_events(10**9) == []
        counts = txn.outbox_counts()
    assert (counts.pending, counts.delivered, counts.given_up) == (0, 1, 1)
    assert store.write(lambda t: t.mark_once("expiring:01:30")) is True
    assert store.write(lambda t: t.mark_once("expiring:01:30")) is False
    pending = store.write(lambda t: t.enqueue_event("acme", "x", {}, at=150))
    assert store.write(lambda t: t.prune_settled(1000)) == 2  # settled ones only
    store.close()
    again = LmdbStore(tmp_path / "lmdb", map_size=1 << 26)
    try:
        with again.read() as txn:
            assert [e.seq for e in txn.iter_events()] == [pending]
            assert txn.marked("expiring:01:30")
    finally:
        again.close()
