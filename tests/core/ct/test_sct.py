"""SCTs without a network: a log key of the test's own signs the RFC 6962 structure;
hanko verifies it, refuses a changed TBS, another log's key and a malformed answer,
and writes the SCT list extension that cryptography (and so openssl's structure)
parses back field for field. And the log policy: operators, counts, shards."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from core.ct import policy
from core.ct.sct import (
    ECDSA,
    SCT_LIST_OID,
    SHA256,
    Sct,
    SctError,
    list_extension_value,
    log_id,
    parse_answer,
    signed_data,
    verify,
)

SPKI = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def log_key() -> tuple[ec.EllipticCurvePrivateKey, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    return key, key.public_key().public_bytes(*SPKI)


def sign(key: ec.EllipticCurvePrivateKey, der: bytes, tbs: bytes, ikh: bytes, ts: int) -> Sct:
    unsigned = Sct(
        version=0,
        log_id=log_id(der),
        timestamp=ts,
        extensions=b"",
        hash_algorithm=SHA256,
        signature_algorithm=ECDSA,
        signature=b"",
    )
    sig = key.sign(signed_data(unsigned, tbs=tbs, issuer_key_hash=ikh), ec.ECDSA(hashes.SHA256()))
    return Sct(
        version=0,
        log_id=log_id(der),
        timestamp=ts,
        extensions=b"",
        hash_algorithm=SHA256,
        signature_algorithm=ECDSA,
        signature=sig,
    )


def test_an_sct_verifies_over_the_precertificate_and_nothing_else() -> None:
    key, der = log_key()
    other, other_der = log_key()
    tbs, ikh = b"\x30\x03\x02\x01\x01", b"\x11" * 32
    sct = sign(key, der, tbs, ikh, 1_796_000_000_000)
    verify(sct, der, signed_data(sct, tbs=tbs, issuer_key_hash=ikh))
    with pytest.raises(SctError):
        verify(sct, der, signed_data(sct, tbs=tbs + b"\x00", issuer_key_hash=ikh))
    with pytest.raises(SctError):
        verify(sct, der, signed_data(sct, tbs=tbs, issuer_key_hash=b"\x22" * 32))
    with pytest.raises(SctError, match="another log"):
        verify(sct, other_der, signed_data(sct, tbs=tbs, issuer_key_hash=ikh))
    del other


def test_a_log_answer_parses_and_a_bad_one_is_refused() -> None:
    key, der = log_key()
    sct = sign(key, der, b"tbs", b"\x11" * 32, 1234)
    digitally_signed = (
        bytes((SHA256, ECDSA)) + len(sct.signature).to_bytes(2, "big") + sct.signature
    )
    answer = {
        "sct_version": 0,
        "id": base64.b64encode(sct.log_id).decode(),
        "timestamp": 1234,
        "extensions": "",
        "signature": base64.b64encode(digitally_signed).decode(),
    }
    assert parse_answer(json.dumps(answer).encode()) == sct
    for broken in (
        {**answer, "sct_version": 1},
        {**answer, "id": "AAAA"},
        {**answer, "signature": "!!"},
        {"nothing": 1},
    ):
        with pytest.raises(SctError):
            parse_answer(json.dumps(broken).encode())


def test_the_sct_list_extension_parses_back() -> None:
    scts = []
    for ts in (1_796_000_000_001, 1_796_000_000_002, 1_796_000_000_003):
        key, der = log_key()
        scts.append(sign(key, der, b"tbs", b"\x11" * 32, ts))
    value = list_extension_value(scts)
    subject_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "t")])
    now = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(subject_key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.UnrecognizedExtension(x509.ObjectIdentifier(SCT_LIST_OID), value), critical=False
        )
        .sign(subject_key, hashes.SHA256())
    )
    parsed = cert.extensions.get_extension_for_class(
        x509.PrecertificateSignedCertificateTimestamps
    ).value
    assert [s.log_id for s in parsed] == [s.log_id for s in scts]
    assert [int(s.timestamp.timestamp() * 1000) for s in parsed] == [s.timestamp for s in scts]
    assert [s.signature for s in parsed] == [s.signature for s in scts]


def log(operator: str, start: int | None = None, end: int | None = None) -> policy.Log:
    return policy.Log(
        url=f"http://{operator}",
        key=b"k",
        operator=operator,
        not_after_start=start,
        not_after_end=end,
    )


def test_the_log_policy() -> None:
    day = 86400
    assert policy.required(180 * day) == 2
    assert policy.required(180 * day + 1) == 3
    assert policy.satisfied(["a", "b"], 100 * day)
    assert not policy.satisfied(["a", "a"], 100 * day)  # one operator
    assert not policy.satisfied(["a", "b"], 200 * day)  # three needed
    assert policy.satisfied(["a", "b", "a"], 200 * day)
    shard = [log("a", 0, 1000), log("a", 1000, 2000), log("b"), log("c")]
    assert [x.not_after_start for x in policy.eligible(shard, 1500)] == [1000, None, None]
    order = policy.submission_order([log("a"), log("a"), log("b"), log("c")], 10)
    assert [x.operator for x in order] == ["a", "b", "c", "a"]
    assert policy.can_satisfy([log("a"), log("b")], 100 * day, 10)
    assert not policy.can_satisfy([log("a"), log("a"), log("a")], 100 * day, 10)
    assert not policy.can_satisfy([log("a"), log("b")], 200 * day, 10)
