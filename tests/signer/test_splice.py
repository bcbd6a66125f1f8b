"""The throwaway-key splice: templates signed by a throwaway key, re-signed in a batch."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import trio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from core.base.der import read_tlv
from core.cmd.wiring import signer_pool
from signer.algorithms import KeyType, SignAlgorithm
from signer.software import SoftwareSigner
from signer.splice import sign_templates, splice_signature, split_signed, throwaway_key
from tests.conftest import DevCA, openssl_verify
from tests.signer.test_pool import running


def template(issuer: x509.Certificate, key_type: KeyType, cn: str) -> bytes:
    subject_key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(issuer.subject)
        .public_key(subject_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(cn)]), critical=False)
        .sign(throwaway_key(key_type), hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.DER)


def test_split_and_splice_are_inverse() -> None:
    issuer_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "t")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(issuer_key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(issuer_key, hashes.SHA256())
    )
    der = cert.public_bytes(serialization.Encoding.DER)
    tbs, _alg, trailer = split_signed(der)
    assert tbs == cert.tbs_certificate_bytes
    assert trailer == b""
    assert splice_signature(der, cert.signature) == der
    with pytest.raises(ValueError, match="DER"):
        split_signed(der[:-1])
    with pytest.raises(ValueError, match="not a signed structure"):
        split_signed(b"\x30\x06\x04\x00\x04\x00\x04\x00")


def test_software_signer_splice_verifies() -> None:
    """Unit test of the splice logic with the software signer (pure, no HSM)."""
    issuer_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test Issuer")])
    now = dt.datetime.now(dt.UTC)
    issuer = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(issuer_key.public_key())
        .serial_number(7)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(issuer_key, hashes.SHA256())
    )
    templates = [template(issuer, KeyType.ECDSA_P256, f"h{i}.example.com") for i in range(5)]
    signer = SoftwareSigner({"issuer": issuer_key})
    signed = trio.run(
        lambda: sign_templates(signer, "issuer", SignAlgorithm.ECDSA_SHA256, templates)
    )
    for der, tmpl in zip(signed, templates, strict=True):
        assert isinstance(der, bytes)
        cert = x509.load_der_x509_certificate(der)
        cert.verify_directly_issued_by(issuer)
        assert split_signed(der)[0] == split_signed(tmpl)[0]  # the TBS is untouched
        read_tlv(der)  # well-formed outer DER


def test_batch_signed_certificates_verify_with_openssl(dev_ca: DevCA, tmp_path: Path) -> None:
    ca = dev_ca.directory / "ca"
    issuer = x509.load_pem_x509_certificate((ca / "issuing.pem").read_bytes())
    templates = [template(issuer, KeyType.ECDSA_P256, f"www{i}.example.com") for i in range(64)]

    async def main() -> list[object]:
        async with running(signer_pool(dev_ca.config, workers=2)) as pool:
            return list(
                await sign_templates(pool, "hanko-issuing-1", SignAlgorithm.ECDSA_SHA256, templates)
            )

    signed = trio.run(main)
    for i, der in enumerate(signed):
        assert isinstance(der, bytes)
        cert = x509.load_der_x509_certificate(der)
        cert.verify_directly_issued_by(issuer)
        if i % 16 == 0:
            path = tmp_path / f"leaf{i}.pem"
            path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
            openssl_verify(ca, path)
    # The throwaway signature itself does not verify against the issuer: the splice did work.
    with pytest.raises(Exception):  # noqa: B017, PT011
        x509.load_der_x509_certificate(templates[0]).verify_directly_issued_by(issuer)
