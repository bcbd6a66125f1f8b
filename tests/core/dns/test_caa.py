"""The CAA decision (core/dns/caa.py) as a table: RFC 8659's cases and RFC 8657's
parameters, pure."""

from __future__ import annotations

import pytest

from core.dns.caa import CaaRecord, Request, decide, parse_issue

CA = "pki.hanko.example.com"
ACCT = "https://acme.hanko.example.com/acme/acct/abc"


def rec(text: str) -> CaaRecord:
    flags, tag, value = text.split(" ", 2)
    return CaaRecord(int(flags), tag, value.strip('"'))


# (records, wildcard, account uri, method, permitted)
CASES = [
    pytest.param([], False, None, None, True, id="no record set: anyone"),
    pytest.param(['0 issue "pki.hanko.example.com"'], False, None, None, True, id="ours"),
    pytest.param(['0 issue "other-ca.example"'], False, None, None, False, id="another CA"),
    pytest.param(['0 issue "PKI.Hanko.Example.COM"'], False, None, None, True, id="case"),
    pytest.param(['0 issue "  pki.hanko.example.com  ;  foo = bar "'], False, None, None, True,
                 id="spaces, unknown parameter ignored"),
    pytest.param(['0 issue ";"'], False, None, None, False, id="issue ';': no one"),
    pytest.param(['0 issue "other.example"', '0 issue "pki.hanko.example.com"'], False, None,
                 None, True, id="several issue records, one ours"),
    pytest.param(['0 iodef "mailto:sec@example.co.jp"'], False, None, None, True,
                 id="iodef alone restricts nothing"),
    pytest.param(['128 tbs "x"', '0 issue "pki.hanko.example.com"'], False, None, None, False,
                 id="unknown critical tag refuses"),
    pytest.param(['0 tbs "x"', '0 issue "pki.hanko.example.com"'], False, None, None, True,
                 id="unknown non-critical tag ignored"),
    pytest.param(['128 issue "pki.hanko.example.com"'], False, None, None, True,
                 id="critical known tag is fine"),
    pytest.param(['0 issuewild "pki.hanko.example.com"', '0 issue "other.example"'], True, None,
                 None, True, id="wildcard decided on issuewild"),
    pytest.param(['0 issuewild "other.example"', '0 issue "pki.hanko.example.com"'], True, None,
                 None, False, id="issuewild refuses a wildcard issue allows"),
    pytest.param(['0 issuewild "other.example"', '0 issue "pki.hanko.example.com"'], False,
                 None, None, True, id="issuewild only for wildcards"),
    pytest.param(['0 issue "pki.hanko.example.com"'], True, None, None, True,
                 id="wildcard without issuewild: issue"),
    pytest.param(['0 issuewild ";"'], False, None, None, True,
                 id="issuewild ';' leaves non-wildcards free"),
    pytest.param(['0 issue "pki.hanko.example.com; accounturi=' + ACCT + '"'], False, ACCT,
                 "http-01", True, id="accounturi matches"),
    pytest.param(['0 issue "pki.hanko.example.com; accounturi=' + ACCT + 'x"'], False, ACCT,
                 "http-01", False, id="accounturi of another account"),
    pytest.param(['0 issue "pki.hanko.example.com; accounturi=' + ACCT + '"'], False, None,
                 "dns-change", False, id="accounturi never matches a non-ACME request"),
    pytest.param(['0 issue "pki.hanko.example.com; validationmethods=dns-01,http-01"'], False,
                 ACCT, "http-01", True, id="validationmethods lists the method"),
    pytest.param(['0 issue "pki.hanko.example.com; validationmethods=dns-01"'], False, ACCT,
                 "http-01", False, id="validationmethods lacks the method"),
    pytest.param(['0 issue "pki.hanko.example.com; validationmethods=dns-change"'], False,
                 None, "dns-change", True, id="a BR method hanko recorded"),
    pytest.param(['0 issue "pki.hanko.example.com; validationmethods=ca-dns-change"'], False,
                 None, "dns-change", True, id="a BR method, ca- prefixed (RFC 8657 4)"),
    pytest.param(['0 issue "pki.hanko.example.com; validationmethods=email"'], False,
                 None, "dns-change", False, id="another BR method"),
    pytest.param(['0 issue "pki.hanko.example.com; validationmethods=dns-01"'], False,
                 None, None, False, id="validationmethods: no method recorded"),
    pytest.param(['0 issue "pki hanko"'], False, None, None, False, id="malformed permits no one"),
]  # fmt: skip


@pytest.mark.parametrize(("records", "wildcard", "account", "method", "permitted"), CASES)
def test_rfc_8659_and_8657(
    records: list[str], wildcard: bool, account: str | None, method: str | None, permitted: bool
) -> None:
    request = Request(name="www.example.co.jp", wildcard=wildcard, account_uri=account,
                      method=method)  # fmt: skip
    d = decide(request, [rec(r) for r in records], "example.co.jp" if records else None,
               identities=[CA])  # fmt: skip
    assert d.permitted is permitted, d.reason
    if not permitted:
        assert "example.co.jp" in d.reason


def test_iodef_is_recorded() -> None:
    d = decide(Request(name="a.example"), [rec('0 iodef "mailto:sec@a.example"'),
               rec('0 issue "pki.hanko.example.com"')], "a.example", identities=[CA])  # fmt: skip
    assert d.iodef == ("mailto:sec@a.example",)


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("ca.example", ("ca.example", {})),
        ("ca.example; accounturi=https://x/acct/1", ("ca.example", {"accounturi": "https://x/acct/1"})),
        (";", ("", {})),
        ("", ("", {})),
        ("ca.example; bad", None),
        ("bad domain", None),
    ],
)  # fmt: skip
def test_issue_values_parse(value: str, parsed: tuple[str, dict[str, str]] | None) -> None:
    assert parse_issue(value) == parsed
