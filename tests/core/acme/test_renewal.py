"""RFC 9773 certificate identifiers and the suggested window."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from core.acme import renewal
from core.acme.problems import Problem

DAY = 86400


def test_the_rfc_9773_example_identifier() -> None:
    # RFC 9773 4.1: AKI 69:88:5B:6B:87:46:40:41:E1:B3:7B:84:7B:A0:AE:2C:DE:01:C8:D4 and
    # serial 00:87:65:43:21 give "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE".
    aki = bytes.fromhex("69885B6B87464041E1B37B847BA0AE2CDE01C8D4")
    assert renewal.parse_cert_id("aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE", aki) == bytes.fromhex(
        "87654321"
    )
    with pytest.raises(Problem):
        renewal.parse_cert_id("aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE", b"\0" * 20)


def test_identifier_round_trip() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "t")])
    now = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(0x8000_0000_0001).not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert renewal.parse_cert_id(renewal.cert_id(cert), aki.key_identifier or b"") == (
        0x8000_0000_0001
    ).to_bytes(6, "big")


def test_the_window_sits_inside_the_renewal_window() -> None:
    start, end = renewal.suggested_window(0, 199 * DAY, revoked=False, now=10 * DAY)
    assert 199 * DAY - 90 * DAY <= start < end < 199 * DAY
    start, end = renewal.suggested_window(0, 397 * DAY, revoked=False, now=10 * DAY)
    assert start == 397 * DAY - 90 * DAY
    assert renewal.suggested_window(0, 199 * DAY, revoked=True, now=10 * DAY)[1] == 10 * DAY
