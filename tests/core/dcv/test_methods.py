"""The domain validation methods (core/dcv/methods.py), pure: challenges as the BR
describe them, and the verdicts on what the edge saw."""

from __future__ import annotations

import pytest

from core.dcv import methods
from core.dcv.methods import Fetched
from core.store.dcv import DcvChallenge

NOW = 1_800_000_000
RAW = bytes(range(20))


def challenge(method: str = "dns-change", **kw: object) -> DcvChallenge:
    return methods.new_challenge(
        challenge_id="c1", org_id="acme", domain="example.co.jp", method=method,  # type: ignore[arg-type]
        raw=RAW, now=NOW, lifetime=30 * 86400, actor="cli", dns_label="_validation-hanko",
        **kw,  # type: ignore[arg-type]
    )  # fmt: skip


def test_random_values_have_at_least_112_bits() -> None:
    value = methods.random_value(RAW)
    assert len(value) == 32  # 160 bits in base32
    assert value == value.lower()
    with pytest.raises(ValueError, match="112"):
        methods.random_value(b"x" * 13)


def test_each_method_says_where_the_value_goes() -> None:
    dns = challenge("dns-change")
    assert dns.record_name == "_validation-hanko.example.co.jp"
    web = challenge("website-change")
    assert web.url == "http://example.co.jp/.well-known/pki-validation/hanko-c1.txt"
    assert web.random_value not in web.url  # BR 3.2.2.4.18: the value is not in the request
    assert challenge("website-change", http_port=8081).url.startswith("http://example.co.jp:8081/")
    assert challenge("email").sent_to == "admin@example.co.jp"
    assert challenge("email", address="Postmaster@example.co.jp").sent_to == (
        "postmaster@example.co.jp"
    )
    assert dns.expires_at == NOW + 30 * 86400


@pytest.mark.parametrize(
    "address", ["info@example.co.jp", "admin@other.co.jp", "admin@sub.example.co.jp", "admin"]
)
def test_only_constructed_addresses_of_the_domain(address: str) -> None:
    with pytest.raises(methods.ChallengeRefused, match="admin@"):
        challenge("email", address=address)


def test_an_address_is_for_email_only() -> None:
    with pytest.raises(methods.ChallengeRefused):
        challenge("dns-change", address="admin@example.co.jp")


def test_usable() -> None:
    import msgspec

    ch = challenge()
    assert methods.usable(ch, NOW) is None
    assert "expired" in (methods.usable(ch, ch.expires_at) or "")
    assert "already used" in (
        methods.usable(msgspec.structs.replace(ch, status="valid"), NOW) or ""
    )
    assert "spent" in (methods.usable(msgspec.structs.replace(ch, status="invalid"), NOW) or "")


def test_dns_change() -> None:
    ch = challenge()
    assert methods.check_dns(ch, ["other", ch.random_value], True, NOW).ok
    assert methods.check_dns(ch, [f" {ch.random_value} "], False, NOW).ok
    no = methods.check_dns(ch, [], True, NOW)
    assert (no.ok, no.reason) == (False, "no TXT record at _validation-hanko.example.co.jp")
    wrong = methods.check_dns(ch, [ch.random_value[:-1]], True, NOW)
    assert not wrong.ok
    assert "holds the random value" in wrong.reason
    assert wrong.evidence["values_seen"] == [ch.random_value[:-1]]


def test_website_change() -> None:
    ch = challenge("website-change")
    ok = methods.check_website(ch, Fetched(((ch.url, 200),), f"{ch.random_value}\n".encode()), NOW)
    assert ok.ok
    assert ok.evidence["hops"] == [{"url": ch.url, "status": 200}]
    assert not methods.check_website(ch, Fetched(((ch.url, 404),), b""), NOW).ok
    assert not methods.check_website(ch, Fetched(((ch.url, 200),), b"something else"), NOW).ok
    # The value must stand as itself, not inside a longer word.
    assert not methods.check_website(
        ch, Fetched(((ch.url, 200),), b"x" + ch.random_value.encode()), NOW
    ).ok
    failed = methods.check_website(ch, Fetched((), error="example.co.jp has no address"), NOW)
    assert (failed.ok, failed.reason) == (False, "example.co.jp has no address")


@pytest.mark.parametrize(
    ("status", "location", "hops", "follows", "refusal"),
    [
        (200, None, 0, None, ""),
        (404, None, 0, None, ""),
        (301, "/elsewhere", 0, "http://a.jp/elsewhere", ""),
        (308, "https://b.jp/x", 0, "https://b.jp/x", ""),
        (302, "https://b.jp:443/x", 0, "https://b.jp:443/x", ""),
        (303, "/x", 0, None, "only 301, 302, 307, 308"),
        (302, None, 0, None, "without a Location"),
        (302, "ftp://b.jp/x", 0, None, "not http or https"),
        (302, "http://b.jp:8080/x", 0, None, "port 8080"),
        (302, "http://b.jp:99999/x", 0, None, "unusable port"),
        (302, "/again", 10, None, "more than 10 redirects"),
    ],
)  # fmt: skip
def test_redirects_only_as_the_br_allow(
    status: int, location: str | None, hops: int, follows: str | None, refusal: str
) -> None:
    following, refused = methods.next_hop("http://a.jp/.well-known/pki-validation/f", status,
                                          location, hops)  # fmt: skip
    assert following == follows
    assert refusal in refused
    assert bool(refused) == bool(refusal)


def test_email() -> None:
    ch = challenge("email")
    assert methods.check_email(ch, ch.random_value.upper(), NOW).ok
    assert not methods.check_email(ch, "nope", NOW).ok
    assert not methods.check_email(ch, None, NOW).ok
    subject, body = methods.mail_text(ch, "pki.example.com")
    assert "example.co.jp" in subject
    assert ch.random_value in body
