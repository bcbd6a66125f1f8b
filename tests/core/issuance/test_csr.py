"""CSR intake: the shapes customers paste, and the CSRs that must be refused."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from core.base.errors import PolicyError
from core.issuance.csr import parse_csr


def make_csr(
    cn: str | None = "www.example.co.jp",
    sans: tuple[str, ...] = ("www.example.co.jp", "api.example.co.jp"),
    extra: list[x509.NameAttribute] | None = None,
) -> x509.CertificateSigningRequest:
    attrs = ([x509.NameAttribute(NameOID.COMMON_NAME, cn)] if cn else []) + (extra or [])
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attrs))
    if sans:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(s) for s in sans]), critical=False
        )
    return builder.sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())


def pem(csr: x509.CertificateSigningRequest) -> str:
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def test_names_cn_first_deduplicated() -> None:
    _, info = parse_csr(pem(make_csr()))
    assert info.names == ("www.example.co.jp", "api.example.co.jp")
    assert info.common_name == "www.example.co.jp"


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t.replace("CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"),
        lambda t: t.rstrip("\n"),
        lambda t: t.replace("\n", "\r\n"),
        lambda t: "  \n\t" + t.replace("\n", " \n") + "\n\n  ",
        lambda t: "Here is my CSR:\n" + t + "\nthanks",
    ],
    ids=["new-header", "no-final-newline", "crlf", "odd-whitespace", "surrounding-text"],
)
def test_pem_variants(mangle: object) -> None:
    text = mangle(pem(make_csr()))  # type: ignore[operator]
    assert parse_csr(text)[1].names[0] == "www.example.co.jp"


def test_der() -> None:
    der = make_csr().public_bytes(serialization.Encoding.DER)
    assert parse_csr(der)[1].common_name == "www.example.co.jp"


def test_der_ending_in_a_whitespace_byte() -> None:
    """A signature's last byte may be 0x20 or 0x09-0x0d: DER is never stripped (this
    failed about once in 40 runs before)."""
    for _ in range(5000):
        der = make_csr().public_bytes(serialization.Encoding.DER)
        if der[-1] in b" \t\n\r\x0b\x0c":
            break
    else:
        pytest.fail("no CSR ending in a whitespace byte was generated")
    assert parse_csr(der)[1].common_name == "www.example.co.jp"


def test_ou_and_email_are_accepted_and_ignored() -> None:
    csr = make_csr(
        extra=[
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "IT"),
            x509.NameAttribute(NameOID.EMAIL_ADDRESS, "admin@example.co.jp"),
        ]
    )
    _, info = parse_csr(pem(csr))
    assert info.names == ("www.example.co.jp", "api.example.co.jp")


def code_of(data: str | bytes) -> str:
    with pytest.raises(PolicyError) as info:
        parse_csr(data)
    return info.value.code


def test_broken_proof_of_possession() -> None:
    der = bytearray(make_csr().public_bytes(serialization.Encoding.DER))
    der[-5] ^= 0x01  # inside the signature
    assert code_of(bytes(der)) in ("csr_signature_invalid", "csr_malformed")


def test_signature_by_another_key() -> None:
    a, b = make_csr(), make_csr()
    # b's TBS with a's signature: structurally fine, proof of possession fails
    der_a = a.public_bytes(serialization.Encoding.DER)
    der_b = b.public_bytes(serialization.Encoding.DER)
    from signer.splice import splice_signature, split_signed

    _, _, _ = split_signed(der_a)
    swapped = splice_signature(der_b, a.signature)
    assert code_of(swapped) == "csr_signature_invalid"


@pytest.mark.parametrize(
    ("data", "code"),
    [
        ("", "csr_malformed"),
        ("hello", "csr_malformed"),
        (
            "-----BEGIN CERTIFICATE REQUEST-----\n!!!\n-----END CERTIFICATE REQUEST-----",
            "csr_malformed",
        ),
        (b"\x30\x03\x02\x01\x01", "csr_malformed"),
        ("x" * 70000, "csr_too_large"),
    ],
)
def test_junk(data: str | bytes, code: str) -> None:
    assert code_of(data) == code


def test_no_names() -> None:
    assert code_of(pem(make_csr(cn=None, sans=()))) == "csr_no_names"


def test_ip_address_in_san() -> None:
    import ipaddress

    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("192.0.2.1"))]),
            critical=False,
        )
        .sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())
    )
    assert code_of(pem(csr)) == "name_is_ip"
