"""The fast TBS encoder against the reference, cryptography's builder: byte for byte."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from core.base.errors import PolicyError
from core.ca import certs as ca_certs
from core.ca.issuer import issuer_info
from core.ca.lint import lint_findings, require_clean
from core.issuance.profile import build_template
from core.issuance.tbs import TbsEncoder
from core.store import OrgRecord
from signer.algorithms import KeyType
from signer.splice import (
    assemble,
    placeholder_key,
    signature_algorithm_der,
    split_signed,
    throwaway_key,
)

ORG = OrgRecord(
    id="a",
    level="ev",
    organization="Hanko Test K.K.",
    country="JP",
    state="Tokyo-to",
    locality="Chiyoda-ku",
    validated_at=0,
    jurisdiction_country="JP",
    business_category="Private Organization",
    registration_number="0100-01-1",
)


def issuer(key_type: KeyType) -> x509.Certificate:
    key = throwaway_key(key_type)
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    root = ca_certs.build_root(
        org="T",
        common_name="T Root",
        public_key=key.public_key(),
        signing_key=key,
        key_type=key_type,
        now=now,
    )
    return ca_certs.build_issuing_ca(
        org="T",
        common_name="T Issuing",
        public_key=key.public_key(),
        root=root,
        root_key=key,
        key_type=key_type,
        base_url="http://pki.example.com",
        now=now,
    )


@pytest.mark.parametrize("key_type", list(KeyType))
@pytest.mark.parametrize("level", ["ov", "ev"])
@pytest.mark.parametrize(
    ("not_before", "cn", "ocsp", "partition", "delta"),
    [
        (dt.datetime(2026, 11, 21, 12, 0, 1, tzinfo=dt.UTC), None, True, 0, False),
        (
            dt.datetime(2049, 12, 31, 23, 59, 59, tzinfo=dt.UTC),
            "www.example.co.jp",
            False,
            65535,
            True,
        ),
        (dt.datetime(2050, 1, 1, tzinfo=dt.UTC), None, True, 300, True),
    ],
)
def test_encoder_matches_builder(
    key_type: KeyType,
    level: str,
    not_before: dt.datetime,
    cn: str | None,
    ocsp: bool,
    partition: int,
    delta: bool,
) -> None:
    info = issuer_info(issuer(key_type), key_type, "http://pki.example.com", ocsp=ocsp)
    alg, _ = signature_algorithm_der(key_type)
    subscriber = (
        ec.generate_private_key(ec.SECP256R1())
        if level == "ov"
        else rsa.generate_private_key(65537, 2048)
    ).public_key()
    names = ["www.example.co.jp", "xn--wgv71a119e.example.co.jp", "*.shop.example.co.jp"]
    serial = x509.random_serial_number()
    not_after = not_before + dt.timedelta(days=199) - dt.timedelta(seconds=1)
    reference = build_template(
        issuer=info,
        throwaway=placeholder_key(key_type),
        org=ORG,
        level=level,
        names=names,
        common_name=cn,
        public_key=subscriber,
        serial=serial,
        partition=partition,
        not_before=not_before,
        not_after=not_after,
        delta_crl=delta,
    ).public_bytes(serialization.Encoding.DER)
    fast = TbsEncoder(info, alg).tbs(
        org=ORG,
        level=level,
        names=names,
        common_name=cn,
        spki=subscriber.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        serial=serial,
        partition=partition,
        not_before=not_before,
        not_after=not_after,
        delta_crl=delta,
    )
    ref_tbs, ref_alg, _ = split_signed(reference)
    assert ref_alg == alg
    assert fast == ref_tbs


def test_lint_gate_passes_clean_and_catches_bad() -> None:
    key_type = KeyType.ECDSA_P256
    info = issuer_info(issuer(key_type), key_type, "http://pki.example.com", ocsp=True)
    alg, placeholder = signature_algorithm_der(key_type)
    enc = TbsEncoder(info, alg)
    spki = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    start = dt.datetime.now(dt.UTC).replace(microsecond=0)

    def cert(days: int, names: list[str]) -> bytes:
        tbs = enc.tbs(
            org=ORG,
            level="ov",
            names=names,
            common_name=None,
            spki=spki,
            serial=x509.random_serial_number(),
            partition=1,
            not_before=start,
            not_after=start + dt.timedelta(days=days) - dt.timedelta(seconds=1),
        )
        return assemble(tbs, alg, placeholder)

    require_clean(cert(199, ["www.example.co.jp"]), "ov")
    # 500 days breaks the BR maximum: the gate must refuse it.
    findings = lint_findings(cert(500, ["www.example.co.jp"]), "ov")
    assert any("validity_period" in f for f in findings), findings
    with pytest.raises(PolicyError) as info_exc:
        require_clean(cert(500, ["www.example.co.jp"]), "ov")
    assert info_exc.value.code == "lint_failed"
    assert (
        x509.load_der_x509_certificate(cert(10, ["a.example.co.jp"]))
        .subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0]
        .value
        == "Hanko Test K.K."
    )
