"""The seed products' portal rules as pure policy, each at its edges, with the time
given (no clock behind it): the www / bare-domain pair, the renewal window, the reissue
limit and window, the name-change window, and the refusal of a reissue whose
organization's subject changed."""

from __future__ import annotations

import datetime as dt

import msgspec
import pytest

from core.base.clock import to_epoch
from core.base.errors import PolicyError
from core.base.units import Duration
from core.config import IssuanceConfig, ProfileConfig
from core.issuance import policy
from core.issuance.csr import CsrRequest
from core.issuance.intake import CheckedCsr
from core.store.records import DomainRecord, OrgRecord
from tests.core.issuance.test_policy import NOW, ORG, facts, previous, request

DAY = 86400
EV_ORG = msgspec.structs.replace(
    ORG,
    level="ev",
    jurisdiction_country="JP",
    business_category="Private Organization",
    registration_number="0100-01-123456",
)


def csr(*names: str) -> CheckedCsr:
    return CheckedCsr(spki=b"spki", request=CsrRequest(names=names, common_name=None))


def validation(domain: str, method: str = "dns-txt", age_days: float = 10) -> DomainRecord:
    at = to_epoch(NOW) - int(age_days * DAY)
    return DomainRecord(org_id="acme", domain=domain, validated_at=at, method=method)


def config(**profile: object) -> IssuanceConfig:
    """An "ov" profile with the pair on; window settings given as "30d" and the like."""
    fields = {k: Duration(v) if k.endswith("_window") else v for k, v in profile.items()}
    base: dict[str, object] = {"level": "ov", "www_pair": True, **fields}
    return IssuanceConfig(profiles={"ov": ProfileConfig(**base)})  # type: ignore[arg-type]


def decide(
    names: tuple[str, ...],
    *domains: DomainRecord,
    cfg: IssuanceConfig | None = None,
    now: dt.datetime = NOW,
    **req: object,
) -> policy.Decision:
    f = facts(domains=domains or (validation("example.co.jp"),), **req.pop("facts", {}))  # type: ignore[arg-type]
    return policy.decide(
        request(**req), csr(*names), f, config=cfg or config(), blocked=frozenset(), now=now
    )


def refused(*args: object, **kwargs: object) -> str:
    with pytest.raises(PolicyError) as err:
        decide(*args, **kwargs)  # type: ignore[arg-type]
    return err.value.code


# -- the www / bare-domain pair ---------------------------------------------------------


def test_www_gets_the_bare_domain_when_the_bare_domain_is_validated() -> None:
    d = decide(("www.example.co.jp",))
    assert (d.names, d.notice) == (["www.example.co.jp", "example.co.jp"], None)


def test_the_bare_domain_gets_www_the_same_way() -> None:
    d = decide(("example.co.jp",))
    assert (d.names, d.notice) == (["example.co.jp", "www.example.co.jp"], None)


def test_validating_www_does_not_cover_the_bare_domain() -> None:
    for only_www in (validation("www.example.co.jp"), validation("www.example.co.jp", "http-file")):
        d = decide(("www.example.co.jp",), only_www)
        assert d.names == ["www.example.co.jp"]
        assert d.notice is not None
        assert d.notice.startswith("example.co.jp was not added")


def test_a_file_validation_of_the_bare_domain_does_not_cover_www() -> None:
    d = decide(("example.co.jp",), validation("example.co.jp", "http-file"))
    assert d.names == ["example.co.jp"]
    assert d.notice is not None
    assert "www.example.co.jp was not added" in d.notice


def test_a_stale_validation_of_the_partner_adds_nothing() -> None:
    fresh_www = validation("www.example.co.jp", "http-file", age_days=1)
    stale_bare = validation("example.co.jp", age_days=250)  # past the 200 days of 2026-12
    d = decide(("www.example.co.jp",), fresh_www, stale_bare)
    assert d.names == ["www.example.co.jp"]
    assert d.notice is not None


@pytest.mark.parametrize(
    "names",
    [
        ("www.example.co.jp", "shop.example.co.jp"),  # two names: the customer chose them
        ("www.shop.example.co.jp",),  # www under a subdomain is not the pair
        ("shop.example.co.jp",),  # nor is any other subdomain
        ("*.example.co.jp",),  # nor a wildcard
    ],
)
def test_other_requests_are_untouched(names: tuple[str, ...]) -> None:
    d = decide(names)
    assert (d.names, d.notice) == (list(names), None)


def test_the_switch_and_a_single_name_profile() -> None:
    off = decide(("www.example.co.jp",), cfg=config(www_pair=False))
    assert (off.names, off.notice) == (["www.example.co.jp"], None)
    # A request may refuse the pair (ACME orders do: exactly the names ordered).
    asked = decide(("www.example.co.jp",), www_pair=False)
    assert (asked.names, asked.notice) == (["www.example.co.jp"], None)
    single = decide(("www.example.co.jp",), cfg=config(max_sans=1))
    assert single.names == ["www.example.co.jp", "example.co.jp"]  # the pair is not a SAN bought


# -- renewal, reissue and name-change windows ---------------------------------------------


def test_the_renewal_window_at_its_edge() -> None:
    expires = to_epoch(NOW) + 90 * DAY
    old = previous(not_before=expires - 150 * DAY, days=150)
    old = msgspec.structs.replace(old, not_after=expires)
    assert (
        decide(("www.example.co.jp",), renewal_of="42", facts={"renewal_of": old}).operation
        == "renewal"
    )
    early = msgspec.structs.replace(old, not_after=expires + 1)
    assert (
        refused(("www.example.co.jp",), renewal_of="42", facts={"renewal_of": early})
        == "renewal_too_early"
    )
    month = config(renewal_window="30d")
    assert (
        refused(("www.example.co.jp",), cfg=month, renewal_of="42", facts={"renewal_of": old})
        == "renewal_too_early"
    )
    in_month = msgspec.structs.replace(old, not_after=to_epoch(NOW) + 30 * DAY)
    d = decide(("www.example.co.jp",), cfg=month, renewal_of="42", facts={"renewal_of": in_month})
    assert d.operation == "renewal"


def reissue(original: object, cfg: IssuanceConfig, *names: str) -> policy.Decision:
    return decide(
        names or ("www.example.co.jp",), cfg=cfg, reissue_of="42", facts={"reissue_of": original}
    )


def refused_reissue(original: object, cfg: IssuanceConfig, *names: str) -> str:
    with pytest.raises(PolicyError) as err:
        reissue(original, cfg, *names)
    return err.value.code


def test_the_reissue_limit() -> None:
    once = config(reissue_limit=1)
    first = previous(
        not_before=to_epoch(NOW) - DAY, days=100, names=("www.example.co.jp", "example.co.jp")
    )
    assert reissue(first, once).reissues == 1
    again = msgspec.structs.replace(first, reissues=1)
    assert refused_reissue(again, once) == "reissue_limit_reached"
    assert reissue(again, config()).reissues == 2  # unlimited by default
    assert refused_reissue(first, config(reissue_limit=0)) == "reissue_limit_reached"


def test_the_reissue_window_at_its_edge() -> None:
    window = config(reissue_window="25d")
    names = ("www.example.co.jp", "example.co.jp")
    on_the_day = previous(not_before=to_epoch(NOW) - 25 * DAY, days=100, names=names)
    assert reissue(on_the_day, window).operation == "reissue"
    past = previous(not_before=to_epoch(NOW) - 25 * DAY - 1, days=100, names=names)
    assert refused_reissue(past, window) == "reissue_window_closed"
    assert reissue(past, config()).operation == "reissue"  # any time by default


def test_the_name_change_window_at_its_edge() -> None:
    names = ("www.example.co.jp", "example.co.jp")
    more = ("www.example.co.jp", "shop.example.co.jp")
    at_30 = previous(not_before=to_epoch(NOW) - 30 * DAY, days=100, names=names)
    assert reissue(at_30, config(), *more).names == list(more)
    past = previous(not_before=to_epoch(NOW) - 30 * DAY - 1, days=100, names=names)
    assert refused_reissue(past, config(), *more) == "name_change_window_closed"
    assert reissue(past, config(name_change_window="60d"), *more).operation == "reissue"
    # Dropping a name changes nothing a customer was not validated for: any time.
    assert reissue(past, config(www_pair=False), "www.example.co.jp").names == ["www.example.co.jp"]


def test_the_pair_never_turns_a_late_reissue_into_a_name_change() -> None:
    # Issued before the pair was switched on: www alone.
    alone = previous(not_before=to_epoch(NOW) - 40 * DAY, days=100)
    d = reissue(alone, config())
    assert d.names == ["www.example.co.jp"]
    assert d.notice is not None
    assert "names change by reissue only within 30 days" in d.notice


# -- the organization's subject ------------------------------------------------------------


def test_a_reissue_after_the_subject_changed_is_refused() -> None:
    names = ("www.example.co.jp", "example.co.jp")
    original = previous(not_before=to_epoch(NOW) - DAY, days=100, names=names)
    moved = msgspec.structs.replace(ORG, locality="Minato-ku")
    with pytest.raises(PolicyError) as err:
        policy.decide(
            request(reissue_of="42"),
            csr("www.example.co.jp"),
            facts(org=moved, reissue_of=original),
            config=config(),
            blocked=frozenset(),
            now=NOW,
        )
    assert err.value.code == "reissue_subject_changed"
    assert "locality" in err.value.message
    # The same subject: a reissue.
    assert reissue(original, config()).operation == "reissue"


def test_an_ev_registration_number_change_is_a_subject_change() -> None:
    ev_cfg = IssuanceConfig(profiles={"ev": ProfileConfig(level="ev", www_pair=True)})
    original = previous(
        not_before=to_epoch(NOW) - DAY,
        days=100,
        names=("www.example.co.jp", "example.co.jp"),
        org=EV_ORG,
    )
    renumbered = msgspec.structs.replace(EV_ORG, registration_number="0100-01-999999")

    def ev(org: OrgRecord) -> policy.Decision:
        return policy.decide(
            request(reissue_of="42", profile="ev"),
            csr("www.example.co.jp"),
            facts(org=org, org_validated_at=org.validated_at, reissue_of=original),
            config=ev_cfg,
            blocked=frozenset(),
            now=NOW,
        )

    assert ev(EV_ORG).operation == "reissue"
    with pytest.raises(PolicyError) as err:
        ev(renumbered)
    assert err.value.code == "reissue_subject_changed"
    assert "registration number" in err.value.message
