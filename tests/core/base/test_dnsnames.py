import pytest

from core.base.dnsnames import covered_by, normalize_dns_name, registrable_domain
from core.base.errors import PolicyError


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("www.example.co.jp", "www.example.co.jp"),
        ("WWW.Example.CO.JP.", "www.example.co.jp"),
        ("  shop.example.com  ", "shop.example.com"),
        ("日本語.jp", "xn--wgv71a119e.jp"),
        ("www.例え.jp", "www.xn--r8jz45g.jp"),
        ("xn--wgv71a119e.jp", "xn--wgv71a119e.jp"),
        ("*.example.co.jp", "*.example.co.jp"),
        ("user.github.io", "user.github.io"),
    ],
)
def test_accepted_names(raw: str, canonical: str) -> None:
    assert normalize_dns_name(raw, allow_wildcard=True) == canonical


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("", "name_empty"),
        ("   ", "name_empty"),
        ("https://www.example.com", "name_has_scheme"),
        ("www.example.com/path", "name_has_path"),
        ("www.example.com:8443", "name_has_port"),
        ("192.0.2.1", "name_is_ip"),
        ("[2001:db8::1]", "name_is_ip"),
        ("1.2.3.4.5", "name_is_ip"),
        ("a&b.example.com", "name_invalid_characters"),
        ("a?.example.com", "name_invalid_characters"),
        ("exa mple.com", "name_invalid_characters"),
        ("intranet", "name_not_fqdn"),
        ("server.local", "name_not_public"),
        ("host.corp", "name_not_public"),
        ("テスト.テスト", "name_not_public"),
        ("co.jp", "name_is_public_suffix"),
        ("*.co.jp", "name_is_public_suffix"),
        ("a.*.example.com", "name_invalid_wildcard"),
        ("w*.example.com", "name_invalid_wildcard"),
        ("xn--abc.jp", "name_invalid_idn"),
        ("-bad.example.com", "name_invalid"),
        ("a" * 64 + ".example.com", "name_invalid"),
        (("a" * 60 + ".") * 5 + "example.com", "name_too_long"),
    ],
)
def test_refused_names(raw: str, code: str) -> None:
    with pytest.raises(PolicyError) as info:
        normalize_dns_name(raw, allow_wildcard=True)
    assert info.value.code == code


def test_wildcard_is_a_profile_switch() -> None:
    with pytest.raises(PolicyError) as info:
        normalize_dns_name("*.example.com", allow_wildcard=False)
    assert info.value.code == "wildcard_not_allowed"


def test_coverage_and_registrable_domain() -> None:
    assert covered_by("www.example.co.jp", "example.co.jp")
    assert covered_by("*.shop.example.co.jp", "example.co.jp")
    assert covered_by("example.co.jp", "example.co.jp")
    assert not covered_by("badexample.co.jp", "example.co.jp")
    assert not covered_by("example.co.jp", "www.example.co.jp")
    assert registrable_domain("*.a.b.example.co.jp") == "example.co.jp"
