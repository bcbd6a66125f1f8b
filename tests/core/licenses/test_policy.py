"""Every license rule, table-driven, against the pure policy with explicit times.

The same rules run through the engine, SoftHSM and LMDB in test_enforcement.py; here
each row is one rule at one instant, including the instants where it flips.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec
import pytest

from core.base.errors import PolicyError
from core.licenses import balances, charging, policy, terms
from core.store import CertRecord, CertStatus, LicenseRecord

JST = dt.timezone(dt.timedelta(hours=9))
OFFSET = 540
DAY = 86400
ALL = policy.KINDS


def at(text: str) -> int:
    """Epoch seconds of a local (JST) time written as 'YYYY-MM-DD' or 'YYYY-MM-DD HH:MM:SS'."""
    fmt = "%Y-%m-%d %H:%M:%S" if " " in text else "%Y-%m-%d"
    return int(dt.datetime.strptime(text, fmt).replace(tzinfo=JST).timestamp())


def buy(kind: str, quantity: int, when: str, **kw: Any) -> LicenseRecord:
    return policy.purchase(
        "L", "acct", kind, quantity=quantity, now=at(when), offset=OFFSET, **kw
    ).license


def issue(
    lic: LicenseRecord,
    when: str,
    *,
    days: int = 90,
    names: tuple[str, ...] = ("a.example.jp",),
    operation: policy.Operation = "new",
    live: int = 0,
    previous: CertRecord | None = None,
    kinds: tuple[str, ...] = ALL,
    serial: str = "01",
) -> policy.Outcome:
    now = at(when)
    lic = policy.lapse(lic, now).license
    return charging.issue(
        lic,
        operation=operation,
        allowed_kinds=kinds,
        profile="ov",
        names=names,
        not_before=now,
        not_after=now + days * DAY - 1,
        now=now,
        offset=OFFSET,
        serial=serial,
        live=live,
        previous=previous,
    )


def cert(out: policy.Outcome, when: str, *, days: int = 90, serial: bytes = b"\x01") -> CertRecord:
    now = at(when)
    return CertRecord(
        serial=serial,
        issuer=b"i",
        status=CertStatus.GOOD,
        not_before=now,
        not_after=now + days * DAY - 1,
        names=["a.example.jp"],
        organization="o",
        profile="ov",
        partition=0,
        der=b"",
        account_id="acct",
        license="L",
        charged=out.charged,
        lot=out.lot,
    )


def refused(code: str, fn: Any, *args: Any, **kw: Any) -> None:
    with pytest.raises(PolicyError) as info:
        fn(*args, **kw)
    assert info.value.code == code, info.value.message


# -- terms ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("delivered", "last_day"),
    [
        ("2014-05-08", "2015-05-31"),  # the contract's own example
        ("2014-05-01 00:00:00", "2015-05-31"),
        ("2014-05-31 23:59:59", "2015-05-31"),
        ("2015-02-10", "2016-02-29"),  # leap year
        ("2014-12-15", "2015-12-31"),  # year end
    ],
)
def test_domain_bundle_term_ends_on_the_last_day_of_the_month_a_year_later(
    delivered: str, last_day: str
) -> None:
    lic = buy("domain_bundle", 1, delivered)
    assert terms.last_day(lic.end, OFFSET).isoformat() == last_day
    lic = policy.add_domain(lic, "example.jp", now=at(delivered), offset=OFFSET).license
    assert issue(lic, f"{last_day} 23:59:59", names=("www.example.jp",)).moves == []
    next_day = (dt.date.fromisoformat(last_day) + dt.timedelta(days=1)).isoformat()
    refused("license_expired", issue, lic, f"{next_day} 00:00:00", names=("www.example.jp",))


@pytest.mark.parametrize(
    ("bought", "used_at", "ok"),
    [
        ("2025-03-01 10:00:00", "2026-03-01 09:59:59", True),  # a second before the year
        ("2025-03-01 10:00:00", "2026-03-01 10:00:00", False),  # exactly one year: lapsed
        ("2024-02-29 12:00:00", "2025-02-28 11:59:59", True),  # leap day: 28 February
        ("2024-02-29 12:00:00", "2025-02-28 12:00:00", False),
    ],
)
def test_units_lapse_at_exactly_one_year(bought: str, used_at: str, ok: bool) -> None:
    for kind, quantity in (("non_pooled", 3), ("coupon", 5)):
        lic = buy(kind, quantity, bought)
        if ok:
            assert issue(lic, used_at).charged == 1
        else:
            refused("license_expired", issue, lic, used_at)
            lapsed = policy.lapse(lic, at(used_at))
            assert [(m.movement, m.amount, m.at) for m in lapsed.moves] == [
                ("lapse", -quantity, lic.lots[0].expires)
            ]


def test_units_are_consumed_oldest_first_and_never_returned() -> None:
    lic = buy("non_pooled", 2, "2025-01-10")
    lic = policy.add(lic, quantity=3, now=at("2025-06-10"), offset=OFFSET).license
    lots = []
    for i in range(5):
        out = issue(lic, "2025-07-01", serial=f"{i + 1:02x}")
        lots.append(out.lot)
        lic = out.license
        if i == 1:  # the first lot is used up before the second is touched
            assert [lot.used for lot in lic.lots] == [2, 0]
    assert lots == [1, 1, 2, 2, 2]
    refused("license_exhausted", issue, lic, "2025-07-01")
    c = cert(policy.Outcome(lic, charged=1, lot=1), "2025-07-01")
    assert charging.release(lic, c, now=at("2025-07-02")).moves == []  # no return, ever


def test_the_old_lot_lapses_and_the_new_one_still_serves() -> None:
    lic = buy("non_pooled", 4, "2025-01-10")
    lic = policy.add(lic, quantity=1, now=at("2025-09-01"), offset=OFFSET).license
    out = issue(lic, "2026-01-10 00:00:00")  # the first lot lapsed at that instant
    assert out.lot == 2
    assert out.license.lapsed == 4
    assert out.license.lots[0].lapsed == 4
    refused("license_exhausted", issue, out.license, "2026-09-01")  # used, not lapsed


@pytest.mark.parametrize(("quantity", "ok"), [(4, False), (5, True), (50, True)])
def test_coupons_are_sold_five_or_more(quantity: int, ok: bool) -> None:
    if ok:
        assert buy("coupon", quantity, "2025-01-01").quantity == quantity
    else:
        refused("license_quantity_invalid", buy, "coupon", quantity, "2025-01-01")


def test_a_coupon_certificate_is_reissued_free_like_a_unit_one() -> None:
    # A coupon (its number) is never refunded or issued again; the certificate it paid
    # for is reissued for a lost key or a wrong request free of charge, like any other.
    for kind in ("coupon", "non_pooled"):
        lic = buy(kind, 5, "2025-01-01")
        out = issue(lic, "2025-02-01")
        prev = cert(out, "2025-02-01")
        again = issue(out.license, "2025-02-05", operation="reissue", previous=prev, serial="02")
        assert again.charged == 1
        assert again.license == out.license  # nothing more taken
        assert [m.movement for m in again.moves] == ["transfer"]


# -- pooled ------------------------------------------------------------------------------


@pytest.mark.parametrize(("years", "ok"), [(0, False), (1, True), (5, True), (6, False)])
def test_pooled_terms_are_one_to_five_years(years: int, ok: bool) -> None:
    if ok:
        lic = buy("pooled", 2, "2025-04-01", years=years)
        assert lic.balance == 2 * (lic.end - lic.start) // DAY
        assert terms.last_day(lic.end, OFFSET) == dt.date(2025 + years, 3, 31)
    else:
        refused("license_term_invalid", buy, "pooled", 2, "2025-04-01", years=years)


def test_pooled_issuance_consumes_validity_and_early_revocation_returns_whole_days() -> None:
    lic = buy("pooled", 1, "2025-01-01", years=1)  # 365 certificate-days
    out = issue(lic, "2025-01-01 09:00:00", days=200)
    assert out.charged == 200
    assert out.license.balance == 165
    c = cert(out, "2025-01-01 09:00:00", days=200)
    # Revoked 50 days and an hour in: 149 whole days were left unused.
    back = charging.release(out.license, c, now=at("2025-02-20 10:00:00"))
    assert [(m.movement, m.amount) for m in back.moves] == [("return", 149)]
    assert back.license.balance == 165 + 149
    assert back.license.returned == 149
    # What came back serves another name.
    assert issue(back.license, "2025-02-21", days=200, names=("b.example.jp",)).charged == 200
    # Released once: a released certificate returns nothing again.
    done = msgspec.structs.replace(c, released=True)
    assert charging.release(back.license, done, now=at("2025-02-21")).moves == []


@pytest.mark.parametrize(
    ("when", "code"),
    [
        ("2025-12-31 23:59:59", None),
        ("2026-01-01 00:00:00", "license_expired"),  # the term is over
    ],
)
def test_no_pooled_issuance_past_the_term(when: str, code: str | None) -> None:
    lic = buy("pooled", 10, "2025-01-01", years=1)
    if code is None:
        assert issue(lic, when).charged == 90
    else:
        refused(code, issue, lic, when)
        lapsed = policy.lapse(lic, at(when))
        assert [(m.movement, m.amount) for m in lapsed.moves] == [("lapse", -lic.balance)]


def test_pooled_exhaustion_names_what_is_left() -> None:
    lic = buy("pooled", 1, "2025-01-01", years=1)
    lic = issue(lic, "2025-01-02", days=300).license
    refused("license_exhausted", issue, lic, "2025-01-03", days=90)
    assert issue(lic, "2025-01-03", days=65).charged == 65


def test_a_pooled_reissue_consumes_nothing_and_returns_a_shortened_tail() -> None:
    lic = buy("pooled", 1, "2025-01-01", years=1)
    out = issue(lic, "2025-01-01", days=100)
    prev = cert(out, "2025-01-01", days=100)
    same = issue(out.license, "2025-01-10", days=91, operation="reissue", previous=prev)
    assert same.license.balance == out.license.balance
    assert same.charged == 100
    shorter = charging.issue(
        out.license,
        operation="reissue",
        allowed_kinds=ALL,
        profile="ov",
        names=["a.example.jp"],
        not_before=at("2025-01-10"),
        not_after=prev.not_after - 30 * DAY,
        now=at("2025-01-10"),
        offset=OFFSET,
        serial="02",
        previous=prev,
    )
    assert shorter.charged == 70
    assert shorter.license.balance == out.license.balance + 30


# -- domain bundles ------------------------------------------------------------------------


def test_bundle_holds_three_domains_per_license_and_grows_but_never_shrinks() -> None:
    lic = buy("domain_bundle", 1, "2025-01-10")
    for d in ("a.jp", "b.jp", "c.jp"):
        lic = policy.add_domain(lic, d, now=at("2025-01-11"), offset=OFFSET).license
    refused(
        "license_exhausted", policy.add_domain, lic, "d.jp", now=at("2025-01-11"), offset=OFFSET
    )
    lic = policy.add(lic, quantity=1, now=at("2025-02-01"), offset=OFFSET).license
    lic = policy.add_domain(lic, "d.jp", now=at("2025-02-01"), offset=OFFSET).license
    assert lic.domains == ["a.jp", "b.jp", "c.jp", "d.jp"]
    assert lic.quantity == 2
    refused("license_reduction", policy.renew, lic, now=at("2025-12-01"), offset=OFFSET, quantity=1)


@pytest.mark.parametrize(
    ("names", "code"),
    [
        (("a.jp",), None),
        (("www.a.jp", "*.b.jp", "x.y.c.jp"), None),  # SAN, wildcard, subdomains
        (("www.a.jp", "www.other.jp"), "domain_not_covered"),  # one name outside
        (("nota.jp",), "domain_not_covered"),  # a suffix is not a subdomain
    ],
)
def test_bundle_certificates_name_only_bundle_domains(
    names: tuple[str, ...], code: str | None
) -> None:
    lic = buy("domain_bundle", 1, "2025-01-10")
    for d in ("a.jp", "b.jp", "c.jp"):
        lic = policy.add_domain(lic, d, now=at("2025-01-11"), offset=OFFSET).license
    if code is None:
        out = issue(lic, "2025-03-01", names=names)
        assert out.charged == 0
        assert out.moves == []
    else:
        refused(code, issue, lic, "2025-03-01", names=names)


@pytest.mark.parametrize(
    ("renewed_on", "new_last_day"),
    [
        ("2015-04-20", "2016-05-31"),  # before the end: runs on from it
        ("2015-09-03", "2016-05-31"),  # after the end: still from the old end
    ],
)
def test_bundle_renewal_starts_from_the_old_end(renewed_on: str, new_last_day: str) -> None:
    lic = buy("domain_bundle", 2, "2014-05-08")
    renewed = policy.renew(lic, now=at(renewed_on), offset=OFFSET).license
    assert terms.last_day(renewed.end, OFFSET).isoformat() == new_last_day
    assert renewed.quantity == 2


# -- monthly plans ---------------------------------------------------------------------------


def test_monthly_plan_caps_live_certificates_and_reissues_freely() -> None:
    lic = buy("monthly", 3, "2025-01-15", months=1)
    assert terms.last_day(lic.end, OFFSET) == dt.date(2025, 2, 14)
    assert issue(lic, "2025-01-20", live=2).moves == []
    refused("license_exhausted", issue, lic, "2025-01-20", live=3)
    prev = cert(policy.Outcome(lic), "2025-01-20")
    # At the limit, a reissue still goes: it replaces a live certificate.
    assert issue(lic, "2025-01-21", live=3, operation="reissue", previous=prev).charged == 0
    refused("license_expired", issue, lic, "2025-02-15 00:00:00", live=0)
    later = policy.renew(lic, now=at("2025-03-01"), offset=OFFSET, months=2).license
    assert terms.last_day(later.end, OFFSET) == dt.date(2025, 4, 30)  # a new term from now


# -- kinds, items and the ledger ---------------------------------------------------------


def test_a_profile_names_the_kinds_that_may_pay_for_it() -> None:
    lic = buy("coupon", 5, "2025-01-01")
    refused("license_wrong_kind", issue, lic, "2025-01-02", kinds=("pooled", "non_pooled"))


def test_extra_items_take_a_unit_and_only_units_pay_for_them() -> None:
    units = buy("non_pooled", 1, "2025-01-01")
    out = charging.take_item(units, now=at("2025-01-02"), item="administrator", subject="x@a.jp")
    assert [(m.movement, m.amount, m.item) for m in out.moves] == [("consume", -1, "administrator")]
    refused(
        "license_exhausted",
        charging.take_item,
        out.license,
        now=at("2025-01-02"),
        item="organization",
        subject="o2",
    )
    pool = buy("pooled", 1, "2025-01-01", years=1)
    refused(
        "license_wrong_kind",
        charging.take_item,
        pool,
        now=at("2025-01-02"),
        item="organization",
        subject="o2",
    )


def test_units_and_bundles_are_not_renewed() -> None:
    refused(
        "license_not_renewable",
        policy.renew,
        buy("non_pooled", 1, "2025-01-01"),
        now=at("2025-02-01"),
        offset=OFFSET,
    )


def test_the_ledger_alone_rebuilds_every_balance() -> None:
    """Fold the movements of a busy history; the result equals the cached record, and
    a tampered cache is reported field by field."""
    from core.store import LedgerEntry

    entries: list[LedgerEntry] = []

    def record(out: policy.Outcome) -> LicenseRecord:
        for m in out.moves:
            entries.append(
                LedgerEntry(
                    seq=len(entries) + 1,
                    at=m.at,
                    account="acct",
                    license="L",
                    movement=m.movement,
                    amount=m.amount,
                    actor="t",
                    lot=m.lot,
                    serial=m.serial,
                    item=m.item,
                    term_end=m.term_end,
                    quantity=m.quantity,
                    note=m.note,
                )
            )
        return out.license

    for kind, kw in (
        ("pooled", {"years": 1}),
        ("non_pooled", {}),
        ("domain_bundle", {}),
        ("monthly", {"months": 2}),
    ):
        entries.clear()
        lic = record(
            policy.purchase(
                "L", "acct", kind, quantity=5, now=at("2025-01-01"), offset=OFFSET, **kw
            )
        )
        if kind == "domain_bundle":
            lic = record(policy.add_domain(lic, "a.jp", now=at("2025-01-02"), offset=OFFSET))
        lic = record(policy.add(lic, quantity=2, now=at("2025-02-01"), offset=OFFSET))
        for i in range(3):
            out = issue(lic, "2025-02-02", names=("a.jp",), serial=f"{i + 1:02x}")
            lic = record(out)
        if kind == "pooled":
            c = cert(out, "2025-02-02", serial=b"\x03")
            lic = record(charging.release(lic, c, now=at("2025-03-01")))
        if kind in policy.TERM_KINDS:
            lic = record(
                policy.renew(
                    lic,
                    now=at("2025-03-01"),
                    offset=OFFSET,
                    **(
                        {"months": 1}
                        if kind == "monthly"
                        else {"years": 1}
                        if kind == "pooled"
                        else {}
                    ),
                )
            )
        lic = record(policy.lapse(lic, at("2028-01-01")))
        assert balances.differences(lic, balances.derive(lic, entries)) == [], kind
        wrong = msgspec.structs.replace(lic, balance=lic.balance + 1, consumed=lic.consumed + 1)
        assert len(balances.differences(wrong, balances.derive(lic, entries))) == 2
