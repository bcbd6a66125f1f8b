"""The seed products' rules through the real engine (SoftHSM signs, the store commits),
each at its edge with an injected clock: coupon numbers (redeemed once, by their
account, a coupon-paid certificate reissued free, multi-year coupons paying renewals),
per-name charging, renewals scheduled until their issue window opens and issued by the
leader's pass, EV never wildcard, an expired certificate never reissued, reminders
skipping superseded certificates, organization level changes. After each scenario the
books balance."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Awaitable, Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import msgspec
import pytest

from core.base.clock import FixedClock, to_epoch
from core.base.errors import Conflict, PolicyError
from core.base.units import Duration
from core.config import Config
from core.dns.resolver import DnsSettings, Resolver
from core.issuance.engine import IssuanceEngine
from core.issuance.messages import IssueResult, ScheduledRenewalView
from core.issuance.org_levels import LevelChange, level_op
from core.issuance.renewals_due import issue_due
from core.licenses import messages as lm
from core.notify import reminders
from core.notify.delivery import Notifier
from tests.conftest import DevCA, free_port
from tests.core.issuance.test_engine import org, run, without_ocsp
from tests.core.licenses.test_enforcement import JST, World
from tests.stores import BACKENDS

# On both store back ends: the coupons' and renewals' tables are new on each.
STORE_BACKENDS = BACKENDS

START = dt.datetime(2026, 11, 21, 10, 0, tzinfo=JST)
DAY = dt.timedelta(days=1)


def configured(ca: DevCA, **ov: Any) -> Config:
    """The CA's configuration, OCSP off (the clock runs past its responder), the OV
    profile with `ov` set."""
    cfg = without_ocsp(ca)
    profiles = {
        **cfg.issuance.profiles,
        "ov": msgspec.structs.replace(cfg.issuance.profiles["ov"], **ov),
    }
    return msgspec.structs.replace(
        cfg, issuance=msgspec.structs.replace(cfg.issuance, profiles=profiles)
    )


def scenario(
    ca: DevCA, job: Callable[[FixedClock, IssuanceEngine], Awaitable[None]], **ov: Any
) -> None:
    clock = FixedClock(START)
    run(ca, clock, lambda engine: job(clock, engine), config=configured(ca, **ov))


def revalidate(w: World) -> None:
    """The organization and its domain validated again, as of the clock (the reuse
    periods run out over the years a scenario spans)."""
    o = msgspec.structs.replace(
        org(w.account, level="ov", validated_at=w.clock.now()), account=w.account
    )
    w.store.write(w.desk.attach_org(o, actor="t"))
    w.validate("example.co.jp")


def coupons_of(view: lm.LicenseView) -> list[str]:
    assert view.coupons is not None
    return view.coupons


# -- coupons ------------------------------------------------------------------------------


def test_coupon_numbers_are_redeemed_once_by_their_account_and_reissue_is_free(
    ca: DevCA,
) -> None:
    async def job(clock: FixedClock, engine: IssuanceEngine) -> None:
        w = World(engine, clock, "shop").open(kind="pooled", quantity=1, years=1)
        sold = w.buy("shop-coupons", kind="coupon", quantity=5, dealer="D0042")
        numbers = coupons_of(sold)
        assert len(numbers) == 5
        assert len(set(numbers)) == 5
        with w.store.read() as txn:  # shown once: the store keeps digests only
            assert not any(
                n.encode() in bytes(c.id) for c in txn.iter_coupons("shop-coupons") for n in numbers
            )
        # A number without its dealer code, or with another, is refused; nothing moves.
        await w.refused("coupon_dealer_mismatch", coupon=numbers[0])
        await w.refused("coupon_dealer_mismatch", coupon=numbers[0], dealer="D0001")
        first = await w.issue(coupon=numbers[0].lower().replace("-", " "), dealer="D0042")
        assert isinstance(first, IssueResult)
        assert (first.license, first.charged) == ("shop-coupons", 1)
        # Redeemed once: never again, in any spelling.
        await w.refused("coupon_redeemed", coupon=numbers[0], dealer="D0042")
        # The certificate it paid is reissued free (a lost key): nothing more taken.
        before = w.inventory().coupons
        again = await w.issue(reissue_of=first.serial)
        assert isinstance(again, IssueResult)
        assert again.license == "shop-coupons"
        assert w.inventory().coupons == before
        # Another account: its number answers exactly as one that does not exist.
        other = World(engine, clock, "other").open(kind="pooled", quantity=1, years=1)
        await other.refused("coupon_unknown", coupon=numbers[1], dealer="D0042")
        await other.refused("coupon_unknown", coupon="ZZZZ-ZZZZ-ZZZZ-ZZZZ-ZZZZ", dealer="D0042")
        # Never refunded: revoking gives nothing back.
        await engine.revoke(again.serial, "keyCompromise", actor="t")
        assert w.inventory().coupons == before
        w.books_balance()

    scenario(ca, job)


def test_coupons_named_for_another_account_and_multi_year_renewals(ca: DevCA) -> None:
    async def job(clock: FixedClock, engine: IssuanceEngine) -> None:
        dealer = World(engine, clock, "reseller").open(kind="pooled", quantity=1, years=1)
        customer = World(engine, clock, "customer").open(kind="pooled", quantity=1, years=5)
        sold = dealer.buy(
            "multi",
            kind="coupon",
            quantity=5,
            years=2,
            common_name="www.example.co.jp",
            redeemers=["customer"],
        )
        number = coupons_of(sold)[0]
        await customer.refused("coupon_common_name_mismatch", "shop.example.co.jp", coupon=number)
        cert = await customer.issue("www.example.co.jp", coupon=number, validity_days=90)
        assert isinstance(cert, IssueResult)
        assert cert.license == "multi"
        used = dealer.inventory().coupons.used
        # A renewal within the two years, for that common name: the coupon pays again.
        clock.advance(70 * DAY)
        renewed = await customer.issue("www.example.co.jp", renewal_of=cert.serial)
        assert isinstance(renewed, IssueResult)
        assert (renewed.license, renewed.charged) == ("multi", 0)
        assert dealer.inventory().coupons.used == used
        # Past its cover, a renewal pays with the account's own licence again.
        clock.advance(2 * 365 * DAY)
        revalidate(customer)
        paid = await customer.issue("www.example.co.jp", renewal_of=renewed.serial)
        assert isinstance(paid, IssueResult)
        assert paid.license == "customer-1"
        assert paid.charged > 0
        customer.books_balance()

    scenario(ca, job)


# -- per-name charging --------------------------------------------------------------------


def test_a_three_name_certificate_takes_three_units_and_is_refused_with_two(ca: DevCA) -> None:
    names = ("www.example.co.jp", "shop.example.co.jp", "api.example.co.jp")

    async def job(clock: FixedClock, engine: IssuanceEngine) -> None:
        w = World(engine, clock, "fqdn").open(kind="non_pooled", quantity=5)
        three = await w.issue(*names)
        assert isinstance(three, IssueResult)
        assert three.charged == 3
        assert w.inventory().non_pooled.available == 2
        with pytest.raises(PolicyError) as refused:
            await w.issue(*names)
        assert refused.value.code == "license_exhausted"
        assert "2 units left" in refused.value.message
        assert "needs 3" in refused.value.message
        assert w.inventory().non_pooled.available == 2  # nothing taken
        # A reissue that adds a name within the name-change window takes one unit more.
        more = await w.issue(*names, "mail.example.co.jp", reissue_of=three.serial)
        assert isinstance(more, IssueResult)
        assert more.charged == 4
        assert w.inventory().non_pooled.available == 1
        w.books_balance()

    scenario(ca, job, charge_per_name=True)


def test_per_name_charging_on_a_pooled_licence_takes_each_names_days(ca: DevCA) -> None:
    async def job(clock: FixedClock, engine: IssuanceEngine) -> None:
        w = World(engine, clock, "pool").open(kind="pooled", quantity=1, years=1)
        # www. alone is paired with the bare domain at no extra charge: one name paid.
        one = await w.issue("www.example.co.jp", validity_days=10)
        two = await w.issue("www.example.co.jp", "shop.example.co.jp", validity_days=10)
        assert isinstance(one, IssueResult)
        assert isinstance(two, IssueResult)
        assert two.charged == 2 * one.charged
        w.books_balance()

    scenario(ca, job, charge_per_name=True)


# -- renewals scheduled until their issue window --------------------------------------


class Receiver:
    """A webhook receiver on loopback that keeps every event's JSON."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                outer.events.append(
                    json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                )
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_renewal_asked_60_days_before_expiry_is_issued_by_the_leader_at_30(ca: DevCA) -> None:
    receiver = Receiver()

    async def job(clock: FixedClock, engine: IssuanceEngine) -> None:
        w = World(engine, clock, "sched").open(kind="non_pooled", quantity=3)
        w.store.write(
            lambda t: t.put_webhook(_hook("sched", receiver.url, clock), at_us=0, actor="t")
        )
        cert = await w.issue(validity_days=100)
        assert isinstance(cert, IssueResult)
        expires = cert.not_after
        # 60 days before expiry: within the 90-day renewal window, before the 30-day
        # issue window. Accepted, scheduled, its unit held.
        clock.set(expires - 60 * DAY)
        w.validate("example.co.jp")
        scheduled = await w.issue(renewal_of=cert.serial)
        assert isinstance(scheduled, ScheduledRenewalView)
        assert scheduled.status == "scheduled"
        assert scheduled.issue_at == expires - 30 * DAY
        assert w.inventory().non_pooled.available == 1  # 3 - 1 issued - 1 held
        w.books_balance()
        # A second renewal of the same certificate is refused while one is scheduled.
        with pytest.raises(Conflict):
            await w.issue(renewal_of=cert.serial)
        # Before the window the leader's pass issues nothing; at it, the renewal.
        clock.set(expires - 30 * DAY - dt.timedelta(seconds=1))
        assert (await issue_due(engine, now=to_epoch(clock.now()))).issued == 0
        clock.set(expires - 30 * DAY)
        done = await issue_due(engine, now=to_epoch(clock.now()))
        assert (done.issued, done.failed) == (1, 0)
        with w.store.read() as txn:
            rec = txn.get_renewal(scheduled.id)
            assert rec is not None
            assert rec.status == "issued"
            new = txn.get_cert(rec.serial)
            old = txn.get_cert(bytes.fromhex(cert.serial))
        assert new is not None
        assert old is not None
        assert old.superseded_by == new.serial
        # Carried over: the renewal ends the old end plus its own validity (capped).
        assert new.not_after > to_epoch(expires)
        assert w.inventory().non_pooled.available == 1  # the hold became the charge
        w.books_balance()
        # Its webhook: certificate.issued with the new serial, delivered.
        notifier = Notifier(
            store=w.store,
            writer=engine.writer,
            clock=clock,
            master=b"m" * 32,
            schedule=[1],
            timeout=5,
            allow_private=True,
            resolver=Resolver(DnsSettings()),
        )
        async with httpx.AsyncClient() as client:
            while await notifier.deliver_due(client):
                pass
        kinds = [(e["type"], e["data"].get("serial")) for e in receiver.events]
        assert ("renewal.scheduled", None) in kinds
        assert ("certificate.issued", new.serial.hex()) in kinds

    try:
        scenario(ca, job, renewal_issue_window=Duration("30d"))
    finally:
        receiver.close()


def test_a_cancelled_or_failed_renewal_gives_its_hold_back(ca: DevCA) -> None:
    async def job(clock: FixedClock, engine: IssuanceEngine) -> None:
        w = World(engine, clock, "cancel").open(kind="pooled", quantity=2, years=2)
        cert = await w.issue(validity_days=100)
        assert isinstance(cert, IssueResult)
        clock.set(cert.not_after - 60 * DAY)
        w.validate("example.co.jp")
        before = w.inventory().pooled.available
        scheduled = await w.issue(renewal_of=cert.serial)
        assert isinstance(scheduled, ScheduledRenewalView)
        assert scheduled.reserved > 0
        assert w.inventory().pooled.available == before - scheduled.reserved
        with w.store.read() as txn:
            rec = txn.get_renewal(scheduled.id)
        assert rec is not None
        await engine.scheduling.settle(rec, "cancelled", actor="t")
        assert w.inventory().pooled.available == before
        w.books_balance()
        # Scheduled again, then the organization's domain validation lapses before the
        # window: the leader's pass fails it, the hold comes back, nothing is issued.
        again = await w.issue(renewal_of=cert.serial)
        assert isinstance(again, ScheduledRenewalView)
        w.store.write(lambda t: t.remove_domain("cancel", "example.co.jp", at_us=0, actor="t"))
        clock.set(cert.not_after - 30 * DAY)
        done = await issue_due(engine, now=to_epoch(clock.now()))
        assert (done.issued, done.failed) == (0, 1)
        with w.store.read() as txn:
            failed = txn.get_renewal(again.id)
        assert failed is not None
        assert failed.status == "failed"
        assert "domain" in failed.error
        assert w.inventory().pooled.available == before
        w.books_balance()

    scenario(ca, job, renewal_issue_window=Duration("30d"))


def _hook(account: str, url: str, clock: FixedClock) -> Any:
    from core.store.notify import WebhookRecord

    return WebhookRecord(
        account=account, url=url, salt=b"s" * 16, created_at=to_epoch(clock.now()), created_by="t"
    )


# -- EV, expiry, reminders, organization levels --------------------------------------------


def test_ev_never_issues_a_wildcard_whatever_the_profile_says(ca: DevCA) -> None:
    cfg = without_ocsp(ca)
    ev = msgspec.structs.replace(cfg.issuance.profiles["ev"], wildcard=None)
    assert ev.allows_wildcard is False  # omitted: never for EV

    async def job(clock: FixedClock, engine: IssuanceEngine) -> None:
        w = World(engine, clock, "evw").open(kind="pooled", quantity=1, years=1)
        ev_fields = LevelChange(
            level="ev",
            jurisdiction_country="JP",
            business_category="Private Organization",
            registration_number="0100-01-123456",
        )
        w.store.write(level_op("evw", ev_fields, now=to_epoch(clock.now()), actor="t"))
        await w.refused("wildcard_not_allowed", "*.example.co.jp", profile="ev")
        ok = await w.issue("www.example.co.jp", profile="ev")
        assert isinstance(ok, IssueResult)

    clock = FixedClock(START)
    profiles = {**cfg.issuance.profiles, "ev": ev}
    cfg = msgspec.structs.replace(
        cfg, issuance=msgspec.structs.replace(cfg.issuance, profiles=profiles)
    )
    run(ca, clock, lambda engine: job(clock, engine), config=cfg)


def test_an_expired_certificate_is_renewed_not_reissued(ca: DevCA) -> None:
    async def job(clock: FixedClock, engine: IssuanceEngine) -> None:
        w = World(engine, clock, "expired").open(kind="non_pooled", quantity=3)
        cert = await w.issue(validity_days=10)
        assert isinstance(cert, IssueResult)
        clock.set(cert.not_after - dt.timedelta(seconds=1))
        again = await w.issue(reissue_of=cert.serial)  # the last second: still a reissue
        assert isinstance(again, IssueResult)
        clock.set(again.not_after + dt.timedelta(seconds=1))
        await w.refused("certificate_expired", reissue_of=again.serial)
        w.books_balance()

    scenario(ca, job)


def test_no_reminder_for_a_superseded_certificate(ca: DevCA) -> None:
    async def job(clock: FixedClock, engine: IssuanceEngine) -> None:
        w = World(engine, clock, "remind").open(kind="non_pooled", quantity=3)
        w.store.write(
            lambda t: t.put_webhook(
                _hook("remind", "http://127.0.0.1:9/h", clock), at_us=0, actor="t"
            )
        )
        kept = await w.issue("www.example.co.jp", validity_days=40)
        renewed = await w.issue("shop.example.co.jp", validity_days=40)
        assert isinstance(kept, IssueResult)
        assert isinstance(renewed, IssueResult)
        clock.advance(5 * DAY)
        successor = await w.issue("shop.example.co.jp", renewal_of=renewed.serial)
        assert isinstance(successor, IssueResult)
        clock.advance(6 * DAY)  # both originals within 30 days of their expiry
        with w.store.read() as txn:
            due = reminders.due(
                txn, w.desk, now=to_epoch(clock.now()), expiry_days=[30], license_days=0
            )
        serials = {r.data.get("serial") for r in due if r.type == "certificate.expiring"}
        assert kept.serial in serials
        assert renewed.serial not in serials

    scenario(ca, job)


def test_an_ev_organization_with_live_ev_certificates_does_not_become_ov(ca: DevCA) -> None:
    async def job(clock: FixedClock, engine: IssuanceEngine) -> None:
        w = World(engine, clock, "levels").open(kind="pooled", quantity=1, years=1)
        now = to_epoch(clock.now())
        # Written anew with another level: refused; the level changes only on purpose.
        ov_org = msgspec.structs.replace(
            org("levels", level="ev", validated_at=clock.now()), account="levels"
        )
        with pytest.raises(Conflict) as written:
            w.store.write(w.desk.attach_org(ov_org, actor="t"))
        assert written.value.code == "org_level_change"
        # Upgrade: the EV fields are checked again.
        with pytest.raises(PolicyError):
            w.store.write(level_op("levels", LevelChange(level="ev"), now=now, actor="t"))
        clock.advance(DAY)
        up = w.store.write(
            level_op(
                "levels",
                LevelChange(
                    level="ev",
                    jurisdiction_country="JP",
                    business_category="Private Organization",
                    registration_number="0100-01-123456",
                ),
                now=to_epoch(clock.now()),
                actor="t",
            )
        )
        assert up.level == "ev"
        assert up.validated_at == to_epoch(clock.now())  # a new validation date
        ev = await w.issue("www.example.co.jp", profile="ev")
        assert isinstance(ev, IssueResult)
        with pytest.raises(PolicyError) as refused:
            w.store.write(level_op("levels", LevelChange(level="ov"), now=now, actor="t"))
        assert refused.value.code == "org_has_live_ev_certificates"
        assert ev.serial in refused.value.message
        await engine.revoke(ev.serial, "cessationOfOperation", actor="t")
        down = w.store.write(
            level_op("levels", LevelChange(level="ov"), now=to_epoch(clock.now()), actor="t")
        )
        assert (down.level, down.business_category) == ("ov", None)

    scenario(ca, job)
