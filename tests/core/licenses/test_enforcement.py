"""License rules through the real engine: SoftHSM signs, LMDB commits the certificate and
its ledger movement together, the clock is injected and moved across each rule's edge.
After every scenario the books are checked: the cached balances equal the ledger's, and
every paid certificate has its consumption."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import pytest

from core.base.clock import FixedClock, to_epoch
from core.base.errors import NotFound, PolicyError
from core.issuance.engine import IssuanceEngine
from core.issuance.messages import IssueRequest, IssueResult
from core.licenses import book, books_check
from core.licenses import messages as lm
from core.licenses.desk import LicenseDesk
from core.store import DomainRecord
from tests.conftest import DevCA
from tests.core.issuance.test_engine import csr_pem, org, run, without_ocsp
from tests.stores import BACKENDS

# Issuance, revocation, licences and idempotency on both store back ends.
STORE_BACKENDS = BACKENDS

JST = dt.timezone(dt.timedelta(hours=9))
DAY = dt.timedelta(days=1)


class World:
    """One account with one license, an OV organization and a validated domain, driven
    with the engine and the desk on the same injected clock."""

    def __init__(self, engine: IssuanceEngine, clock: FixedClock, account: str) -> None:
        self.engine = engine
        self.clock = clock
        self.account = account
        self.desk = LicenseDesk(book.Settings(), clock)
        self.store = engine.store

    def open(self, *, kind: str, quantity: int, **terms: int) -> World:
        self.store.write(
            self.desk.create_account(lm.AccountIn(id=self.account, name="Acme"), actor="t")
        )
        self.buy(f"{self.account}-1", kind=kind, quantity=quantity, **terms)
        o = msgspec.structs.replace(
            org(self.account, level="ov", validated_at=self.clock.now()), account=self.account
        )
        self.store.write(self.desk.attach_org(o, actor="t"))
        self.validate("example.co.jp")
        return self

    def buy(self, license_id: str, **fields: Any) -> lm.LicenseView:
        body = msgspec.convert({"id": license_id, **fields}, lm.LicenseIn)
        return self.store.write(self.desk.buy(self.account, body, actor="t"))

    def validate(self, domain: str) -> None:
        rec = DomainRecord(
            org_id=self.account,
            domain=domain,
            validated_at=to_epoch(self.clock.now()),
            method="dns-txt",
        )
        self.store.write(lambda t: t.put_domain(rec, at_us=0, actor="t"))

    async def issue(self, *names: str, **fields: Any) -> IssueResult:
        req = IssueRequest(
            csr=csr_pem(list(names or ("www.example.co.jp",))),
            profile=fields.pop("profile", "ov"),
            organization=self.account,
            **fields,
        )
        return await self.engine.issue(req, actor="t")

    async def refused(self, code: str, *names: str, **fields: Any) -> None:
        before = self.ledger()
        with pytest.raises(PolicyError) as info:
            await self.issue(*names, **fields)
        assert info.value.code == code, info.value.message
        assert self.ledger() == before  # nothing consumed

    def at(self, when: dt.datetime) -> None:
        self.clock.set(when)

    def inventory(self) -> lm.InventoryView:
        with self.store.read() as txn:
            return self.desk.inventory(txn, self.account)

    def ledger(self) -> list[tuple[str, int]]:
        with self.store.read() as txn:
            view = self.desk.ledger(txn, self.account)
        return [(e.movement, e.amount) for e in view.entries]

    def books_balance(self) -> None:
        with self.store.read() as txn:
            assert books_check.check(txn) == []


def scenario(
    ca: DevCA, start: dt.datetime, job: Callable[[FixedClock, IssuanceEngine], Awaitable[None]]
) -> None:
    clock = FixedClock(start)
    # Scenarios run for a year or more: past the CA's responder certificate.
    run(ca, clock, lambda engine: job(clock, engine), config=without_ocsp(ca))


def test_bundle_term_runs_to_the_end_of_the_month_a_year_later(ca: DevCA) -> None:
    async def job(clock: FixedClock, engine: IssuanceEngine) -> None:
        w = World(engine, clock, "bundle").open(kind="domain_bundle", quantity=1)
        lic = w.store.write(
            w.desk.add_domain(
                "bundle", "bundle-1", lm.LicenseDomainIn(domain="example.co.jp"), actor="t"
            )
        )
        assert lic.term_last_day == dt.date(2027, 5, 31)  # delivered 2026-05-08
        first = await w.issue("www.example.co.jp", "*.shop.example.co.jp")
        assert first.charged == 0
        w.validate("other.co.jp")  # validated for the organization, not in the bundle
        await w.refused("domain_not_covered", "www.example.co.jp", "www.other.co.jp")
        w.at(dt.datetime(2027, 5, 31, 23, 59, 59, tzinfo=JST))  # the term's last second
        w.validate("example.co.jp")
        await w.issue("api.example.co.jp")
        w.at(dt.datetime(2027, 6, 1, 0, 0, 0, tzinfo=JST))
        await w.refused("license_expired", "www.example.co.jp")
        # Past the term the account still revokes what it has.
        revoked = await engine.revoke(first.serial, "cessationOfOperation", actor="t")
        assert not revoked.already_revoked
        assert engine.view(first.serial).status == "revoked"
        # A renewal after the term starts from the old end: to 2028-05-31.
        renewed = w.store.write(w.desk.renew("bundle", "bundle-1", lm.LicenseRenewIn(), actor="t"))
        assert renewed.term_last_day == dt.date(2028, 5, 31)
        await w.issue("www.example.co.jp")
        w.books_balance()

    scenario(ca, dt.datetime(2026, 5, 8, 10, 0, tzinfo=JST), job)


def test_units_lapse_at_exactly_one_year(ca: DevCA) -> None:
    bought = dt.datetime(2026, 2, 1, 12, 0, tzinfo=JST)

    async def job(clock: FixedClock, engine: IssuanceEngine) -> None:
        w = World(engine, clock, "units").open(kind="non_pooled", quantity=3)
        assert (await w.issue()).charged == 1
        w.at(bought.replace(year=2027) - dt.timedelta(seconds=1))
        w.validate("example.co.jp")
        await w.issue()
        w.at(bought.replace(year=2027))
        await w.refused("license_expired")
        inv = w.inventory().non_pooled
        assert (inv.purchased, inv.used, inv.available, inv.lapsed) == (3, 2, 0, 1)
        # The lapse is written when time brings it, dated at the exact instant.
        assert w.store.write(w.desk.sweep()) == 1
        with w.store.read() as txn:
            last = list(txn.iter_ledger(account="units"))[-1]
        assert (last.movement, last.amount, last.at) == ("lapse", -1, to_epoch(clock.now()))
        w.books_balance()

    scenario(ca, bought, job)


def test_pooled_days_come_back_on_early_revocation(ca: DevCA) -> None:
    async def job(clock: FixedClock, engine: IssuanceEngine) -> None:
        w = World(engine, clock, "pool").open(kind="pooled", quantity=1, years=1)
        assert w.inventory().pooled.purchased == 365
        cert = await w.issue(validity_days=100)
        assert cert.charged == 100
        w.at(clock.now() + 30 * DAY + dt.timedelta(hours=1))
        await engine.revoke(cert.serial, "superseded", actor="t")
        assert w.ledger()[-1] == ("return", 69)  # 100 days less 30 days and an hour
        pool = w.inventory().pooled
        assert (pool.used, pool.available) == (31, 334)
        # Revoking again returns nothing more.
        await engine.revoke(cert.serial, "superseded", actor="t")
        assert w.ledger()[-1] == ("return", 69)
        assert len(w.ledger()) == 3
        # Past the term: no issuance, revocation still works.
        other = await w.issue(validity_days=50)
        w.at(dt.datetime(2027, 5, 5, 9, 0, tzinfo=JST))  # the year is over
        w.validate("example.co.jp")
        await w.refused("license_expired")
        assert (await engine.revoke(other.serial, "unspecified", actor="t")).reason
        assert w.inventory().pooled.available == 0
        w.books_balance()

    scenario(ca, dt.datetime(2026, 5, 5, 9, 0, tzinfo=JST), job)


def test_reissue_is_free_and_renewal_pays(ca: DevCA) -> None:
    async def job(clock: FixedClock, engine: IssuanceEngine) -> None:
        w = World(engine, clock, "renew").open(kind="non_pooled", quantity=2)
        first = await w.issue(validity_days=100)
        again = await w.issue(reissue_of=first.serial, validity_days=100)
        assert again.charged == 1  # carried, not taken
        assert w.inventory().non_pooled.available == 1
        w.at(clock.now() + 20 * DAY)
        w.validate("example.co.jp")
        renewed = await w.issue(renewal_of=again.serial, validity_days=100)
        assert renewed.charged == 1
        assert w.inventory().non_pooled.available == 0
        await w.refused("license_exhausted", "mail.example.co.jp")
        assert [m for m, _ in w.ledger()] == ["purchase", "consume", "transfer", "consume"]
        w.books_balance()

    scenario(ca, dt.datetime(2026, 11, 21, 10, 0, tzinfo=JST), job)


def test_monthly_plan_counts_live_certificates(ca: DevCA) -> None:
    async def job(clock: FixedClock, engine: IssuanceEngine) -> None:
        w = World(engine, clock, "monthly").open(kind="monthly", quantity=1, months=1)
        one = await w.issue(validity_days=10)
        await w.refused("license_exhausted", "two.example.co.jp")
        swapped = await w.issue(reissue_of=one.serial, validity_days=10)  # free within N
        await engine.revoke(swapped.serial, "cessationOfOperation", actor="t")
        await w.issue("two.example.co.jp", validity_days=5)  # the slot came back
        w.at(clock.now() + 6 * DAY)  # that one expired: its slot is free too
        await w.issue("three.example.co.jp", validity_days=5)
        w.at(dt.datetime(2026, 12, 21, 10, 0, tzinfo=JST))  # the month is over
        await w.refused("license_expired", "four.example.co.jp")
        w.books_balance()

    scenario(ca, dt.datetime(2026, 11, 21, 10, 0, tzinfo=JST), job)


def test_named_license_and_account_default(ca: DevCA) -> None:
    async def job(clock: FixedClock, engine: IssuanceEngine) -> None:
        w = World(engine, clock, "named").open(kind="coupon", quantity=5)
        w.buy("named-pool", kind="pooled", quantity=1, years=1)
        assert (await w.issue()).license == "named-1"  # the first bought is the default
        assert (await w.issue(license="named-pool")).license == "named-pool"
        await w.refused("license_unknown", license="nope")
        World(engine, clock, "stranger").open(kind="non_pooled", quantity=1)
        await w.refused("license_unknown", license="stranger-1")
        w.books_balance()

    scenario(ca, dt.datetime(2026, 11, 21, 10, 0, tzinfo=JST), job)


def test_extra_organizations_and_administrators_take_units(ca: DevCA) -> None:
    async def job(clock: FixedClock, engine: IssuanceEngine) -> None:
        w = World(engine, clock, "extras").open(kind="non_pooled", quantity=1)
        w.store.write(w.desk.add_admin("extras", lm.AdminIn(email="a@acme.jp"), actor="t"))
        second = msgspec.structs.replace(
            org("extras-osaka", level="ov", validated_at=clock.now() - 500 * DAY),
            account="extras",
            parent="extras",
        )
        with pytest.raises(PolicyError) as info:  # no extras license yet
            w.store.write(w.desk.attach_org(second, actor="t"))
        assert info.value.code == "license_required"
        w.store.write(
            w.desk.configure("extras", lm.AccountSettingsIn(extras_license="extras-1"), actor="t")
        )
        rec = w.store.write(w.desk.attach_org(second, actor="t"))
        assert rec.validated_at == to_epoch(clock.now())  # the parent's validation
        with pytest.raises(PolicyError) as info:  # the one unit went to the organization
            w.store.write(w.desk.add_admin("extras", lm.AdminIn(email="b@acme.jp"), actor="t"))
        assert info.value.code == "license_exhausted"
        with w.store.read() as txn:
            view = w.desk.account_view(txn, "extras")
        assert view.organizations == ["extras", "extras-osaka"]
        assert view.admins == ["a@acme.jp"]
        # Removing an administrator frees a seat among the included ones, not the unit.
        gone = w.store.write(w.desk.remove_admin("extras", "A@acme.jp", actor="t"))
        assert gone.admins == []
        with pytest.raises(NotFound):
            w.store.write(w.desk.remove_admin("extras", "a@acme.jp", actor="t"))
        back = w.store.write(w.desk.add_admin("extras", lm.AdminIn(email="b@acme.jp"), actor="t"))
        assert back.admins == ["b@acme.jp"]
        with w.store.read() as txn:
            units = w.desk.inventory(txn, "extras").non_pooled
        assert (units.purchased, units.used, units.available) == (1, 1, 0)
        ev_child = msgspec.structs.replace(second, id="extras-ev", level="ev")
        with pytest.raises(PolicyError) as info:
            w.store.write(w.desk.attach_org(ev_child, actor="t"))
        assert info.value.code == "sub_organization_ev"
        w.books_balance()

    scenario(ca, dt.datetime(2026, 11, 21, 10, 0, tzinfo=JST), job)


def test_a_profile_refuses_the_wrong_kind(ca: DevCA) -> None:
    cfg = msgspec.structs.replace(
        ca.config,
        issuance=msgspec.structs.replace(
            ca.config.issuance,
            profiles={
                **ca.config.issuance.profiles,
                "ov": msgspec.structs.replace(
                    ca.config.issuance.profiles["ov"], license_kinds=["pooled"]
                ),
            },
        ),
    )

    async def job(engine: IssuanceEngine) -> None:
        clock = FixedClock(dt.datetime(2026, 11, 21, 10, 0, tzinfo=JST))
        w = World(engine, clock, "kinds").open(kind="coupon", quantity=5)
        await w.refused("license_wrong_kind")

    run(ca, FixedClock(dt.datetime(2026, 11, 21, 10, 0, tzinfo=JST)), job, config=cfg)
