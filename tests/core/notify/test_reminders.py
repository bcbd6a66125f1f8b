"""Reminders on an injected clock, over a real store: licence units lapsing unused and
a term ending are told once each, for accounts with a webhook only; a certificate's
reminders come at each configured day."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.base.clock import FixedClock, to_epoch
from core.licenses import book
from core.licenses.desk import LicenseDesk
from core.licenses.messages import AccountIn, LicenseIn
from core.notify import reminders
from core.store import LmdbStore, Store
from core.store.notify import WebhookRecord

T0 = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
DAY = 86400


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = LmdbStore(tmp_path / "lmdb", create=True, map_size=1 << 26)
    yield s
    s.close()


def test_licence_reminders_once_and_only_with_a_webhook(store: Store) -> None:
    clock = FixedClock(T0)
    desk = LicenseDesk(book.Settings(offset=540, expiring_soon=30 * DAY), clock)
    for account in ("acme", "quiet"):
        store.write(desk.create_account(AccountIn(id=account, name=f"{account} K.K."), actor="t"))
        store.write(
            desk.buy(
                account, LicenseIn(id=f"{account}-units", kind="non_pooled", quantity=3), actor="t"
            )
        )
        store.write(
            desk.buy(
                account,
                LicenseIn(id=f"{account}-plan", kind="monthly", quantity=2, months=12),
                actor="t",
            )
        )
    store.write(
        lambda t: t.put_webhook(
            WebhookRecord(
                account="acme", url="https://h.example/", salt=b"s", created_at=0, created_by="t"
            ),
            at_us=0,
            actor="t",
        )
    )

    def due(at: dt.datetime) -> list[reminders.Reminder]:
        clock.set(at)
        with store.read() as txn:
            return reminders.due(txn, desk, now=to_epoch(at), expiry_days=[30, 10], license_days=30)

    assert due(T0) == []  # a year away
    soon = due(T0 + dt.timedelta(days=340))
    assert {(r.account, r.type) for r in soon} == {
        ("acme", "license.units_lapsing"),
        ("acme", "license.term_ending"),
    }
    lapsing = next(r for r in soon if r.type == "license.units_lapsing")
    assert (lapsing.data["license"], lapsing.data["units"]) == ("acme-units", 3)
    now = to_epoch(T0) + 340 * DAY
    assert store.write(reminders.queue(soon, now=now)) == 2
    assert store.write(reminders.queue(soon, now=now)) == 0  # marked: never twice
    assert due(T0 + dt.timedelta(days=345)) == []
    with store.read() as txn:
        types = sorted(e.type for e in txn.iter_events())
    assert types == ["license.term_ending", "license.units_lapsing"]
