"""The issuance policy as a pure function: Facts in, a Decision or a refusal out, with no
store, signer or clock behind it (the engine tests run the same rules end to end)."""

from __future__ import annotations

import datetime as dt

import msgspec
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from core.base.clock import to_epoch
from core.base.errors import NotFound, PolicyError
from core.config import IssuanceConfig
from core.issuance import policy
from core.issuance.csr import CsrRequest
from core.issuance.intake import CheckedCsr
from core.issuance.messages import IssueRequest
from core.issuance.profile import subject_for
from core.store.records import CertRecord, CertStatus, DomainRecord, OrgRecord

NOW = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
DAY = 86400
CONFIG = IssuanceConfig()
ORG = OrgRecord(
    id="acme",
    level="ov",
    organization="Acme Japan K.K.",
    country="JP",
    state="Tokyo-to",
    locality="Chiyoda-ku",
    validated_at=to_epoch(NOW) - 10 * DAY,
    account="acme",
)
CSR = CheckedCsr(spki=b"spki", request=CsrRequest(names=("www.example.co.jp",), common_name=None))


def facts(**changes: object) -> policy.Facts:
    base = policy.Facts(
        org=ORG,
        org_validated_at=ORG.validated_at,
        spki_sha256=b"\x01" * 32,
        key_blocked=False,
        domains=(
            DomainRecord(
                org_id="acme",
                domain="example.co.jp",
                validated_at=ORG.validated_at,
                method="dns-txt",
            ),
        ),
        renewal_of=None,
        reissue_of=None,
    )
    return msgspec.structs.replace(base, **changes)


def request(**fields: object) -> IssueRequest:
    return msgspec.convert(
        {"csr": "-", "profile": "ov", "organization": "acme", **fields}, IssueRequest
    )


def _der(org: OrgRecord) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    cn = x509.NameAttribute(NameOID.COMMON_NAME, "www.example.co.jp")
    name = x509.Name([*subject_for(org, None, org.level), cn])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(0x42)
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.DER)
    )


def previous(
    *,
    not_before: int,
    days: int,
    names: tuple[str, ...] = ("www.example.co.jp",),
    org: OrgRecord = ORG,
    reissues: int = 0,
) -> CertRecord:
    return CertRecord(
        serial=b"\x42",
        issuer=b"i",
        status=CertStatus.GOOD,
        not_before=not_before,
        not_after=not_before + days * DAY - 1,
        names=list(names),
        organization="acme",
        profile="ov",
        partition=0,
        der=_der(org),
        first_issued=not_before,
        reissues=reissues,
    )


def refusal(req: IssueRequest, f: policy.Facts, csr: CheckedCsr | PolicyError = CSR) -> str:
    with pytest.raises((PolicyError, NotFound)) as err:
        policy.decide(req, csr, f, config=CONFIG, blocked=frozenset(), now=NOW)
    return err.value.code


def test_a_new_certificate_gets_one_day_less_than_the_maximum_in_force() -> None:
    d = policy.decide(request(), CSR, facts(), config=CONFIG, blocked=frozenset(), now=NOW)
    # The profile pairs www with the bare domain, which example.co.jp's DNS validation
    # covers.
    pair = ["www.example.co.jp", "example.co.jp"]
    assert (d.operation, d.names, d.replaces, d.notice) == ("new", pair, None, None)
    assert d.not_after - d.not_before == dt.timedelta(days=199) - dt.timedelta(seconds=1)


def test_refusals_come_in_the_order_a_customer_should_hear_them() -> None:
    bad_csr = PolicyError("csr_malformed", "no CSR")
    # The organization is looked at before the CSR, the CSR before the key, the key
    # before the names' domains.
    assert refusal(request(), facts(org=None), bad_csr) == "organization_unknown"
    old = to_epoch(NOW) - 400 * DAY
    expired = facts(org_validated_at=old)
    assert refusal(request(), expired, bad_csr) == "organization_validation_expired"
    assert refusal(request(), facts(key_blocked=True), bad_csr) == "csr_malformed"
    assert refusal(request(), facts(key_blocked=True, domains=())) == "key_blocked"
    assert refusal(request(), facts(domains=())) == "domain_not_validated"
    assert refusal(request(validity_days=201), facts()) == "validity_too_long"


def test_renewal_opens_90_days_before_expiry_and_carries_the_rest_over() -> None:
    start = to_epoch(NOW) - 100 * DAY
    early = previous(not_before=start, days=191)  # 91 days left: not yet
    assert refusal(request(renewal_of="42"), facts(renewal_of=early)) == "renewal_too_early"
    due = previous(not_before=start, days=190)  # 90 days left: open
    d = policy.decide(
        request(renewal_of="42", validity_days=100),
        CSR,
        facts(renewal_of=due),
        config=CONFIG,
        blocked=frozenset(),
        now=NOW,
    )
    assert d.operation == "renewal"
    # 100 days plus the 90 left, within the 200-day maximum (each ends a second early).
    assert d.not_after == NOW + dt.timedelta(days=190) - dt.timedelta(seconds=2)


def test_a_reissue_keeps_the_expiry_and_may_add_names_only_early() -> None:
    start = to_epoch(NOW) - 10 * DAY
    original = previous(not_before=start, days=150)
    d = policy.decide(
        request(reissue_of="42"),
        CSR,
        facts(reissue_of=original),
        config=CONFIG,
        blocked=frozenset(),
        now=NOW,
    )
    assert (d.operation, d.replaces, d.first_issued) == ("reissue", b"\x42", start)
    assert to_epoch(d.not_after) == original.not_after
    late = previous(not_before=to_epoch(NOW) - 31 * DAY, days=150, names=("a.example.co.jp",))
    assert refusal(request(reissue_of="42"), facts(reissue_of=late)) == "name_change_window_closed"
    renamed_org = msgspec.structs.replace(ORG, organization="Acme Holdings K.K.")
    renamed = previous(not_before=start, days=150, org=renamed_org)
    assert refusal(request(reissue_of="42"), facts(reissue_of=renamed)) == "reissue_subject_changed"
