"""The OCSP codec against cryptography's parser and builder, and against bad input."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from core.base.errors import MalformedOcspRequest
from core.base.reasons import RevocationReason
from ocsp.codec import CertIdHash, ResponseStatus, error_response, parse_request
from ocsp.response_codec import (
    CertStatusKind,
    Envelopes,
    ResponseEncoder,
    ResponseEnvelope,
    responder_key_hash,
)
from signer.splice import split_signed
from tests.conftest import lint_ocsp

NOW = dt.datetime(2026, 11, 21, 12, 0, 0, tzinfo=dt.UTC)
ECDSA_SHA256 = bytes.fromhex("300a06082a8648ce3d040302")  # its AlgorithmIdentifier


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name,
    signer_key: ec.EllipticCurvePrivateKey,
    *,
    ocsp_signing: bool = False,
) -> x509.Certificate:
    b = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=90))
    )
    if ocsp_signing:
        b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), False)
    return b.sign(signer_key, hashes.SHA256())


@pytest.fixture(scope="module")
def pki() -> dict[str, object]:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test Issuing CA")])
    ca = _cert("Test Issuing CA", ca_key, name, ca_key)
    responder_key = ec.generate_private_key(ec.SECP256R1())
    responder = _cert("Test OCSP", responder_key, name, ca_key, ocsp_signing=True)
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = _cert("leaf.example.com", leaf_key, name, ca_key)
    return {"ca": ca, "responder": responder, "responder_key": responder_key, "leaf": leaf}


def _request(
    leaf: x509.Certificate,
    ca: x509.Certificate,
    alg: hashes.HashAlgorithm,
    nonce: bytes | None = None,
) -> bytes:
    b = ocsp.OCSPRequestBuilder().add_certificate(leaf, ca, alg)
    if nonce is not None:
        b = b.add_extension(x509.OCSPNonce(nonce), critical=False)
    return b.build().public_bytes(serialization.Encoding.DER)


@pytest.mark.parametrize(
    ("alg", "expected"), [(hashes.SHA1(), CertIdHash.SHA1), (hashes.SHA256(), CertIdHash.SHA256)]
)
def test_parses_what_cryptography_builds(
    pki: dict, alg: hashes.HashAlgorithm, expected: CertIdHash
) -> None:
    der = _request(pki["leaf"], pki["ca"], alg, nonce=b"0123456789abcdef")
    req = parse_request(der)
    ref = ocsp.load_der_ocsp_request(der)
    [cid] = req.cert_ids
    assert cid.hash is expected
    assert cid.serial == ref.serial_number == pki["leaf"].serial_number
    assert cid.issuer_name_hash == ref.issuer_name_hash
    assert cid.issuer_key_hash == ref.issuer_key_hash
    assert req.nonce is not None
    assert req.nonce.endswith(b"0123456789abcdef")
    enc = ResponseEncoder(
        issuer=pki["ca"], responder=pki["responder"], signature_algorithm=ECDSA_SHA256
    )
    assert enc.issuer_hashes.matches(cid)


def test_other_issuer_does_not_match(pki: dict) -> None:
    other_key = ec.generate_private_key(ec.SECP256R1())
    other = _cert(
        "Other CA",
        other_key,
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Other CA")]),
        other_key,
    )
    req = parse_request(_request(pki["leaf"], other, hashes.SHA1()))
    enc = ResponseEncoder(
        issuer=pki["ca"], responder=pki["responder"], signature_algorithm=ECDSA_SHA256
    )
    assert not enc.issuer_hashes.matches(req.cert_ids[0])


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (ocsp.OCSPCertStatus.GOOD, None),
        (ocsp.OCSPCertStatus.REVOKED, x509.ReasonFlags.key_compromise),
        (ocsp.OCSPCertStatus.REVOKED, None),
    ],
)
@pytest.mark.parametrize("alg", [hashes.SHA1(), hashes.SHA256()])
def test_response_is_byte_identical_to_cryptography(
    pki: dict,
    status: ocsp.OCSPCertStatus,
    reason: x509.ReasonFlags | None,
    alg: hashes.HashAlgorithm,
) -> None:
    revoked_at = NOW - dt.timedelta(hours=3) if status is ocsp.OCSPCertStatus.REVOKED else None
    ref = (
        ocsp.OCSPResponseBuilder()
        .add_response(
            cert=pki["leaf"],
            issuer=pki["ca"],
            algorithm=alg,
            cert_status=status,
            this_update=NOW,
            next_update=NOW + dt.timedelta(days=4),
            revocation_time=revoked_at,
            revocation_reason=reason,
        )
        .responder_id(ocsp.OCSPResponderEncoding.HASH, pki["responder"])
        .certificates([pki["responder"]])
        .sign(pki["responder_key"], hashes.SHA256())
    )
    ref_der = ref.public_bytes(serialization.Encoding.DER)
    _, alg_der, _ = split_signed(ref.certificates[0].public_bytes(serialization.Encoding.DER))
    enc = ResponseEncoder(issuer=pki["ca"], responder=pki["responder"], signature_algorithm=alg_der)
    code = {
        None: RevocationReason.UNSPECIFIED,
        x509.ReasonFlags.key_compromise: RevocationReason.KEY_COMPROMISE,
    }[reason]
    tbs = enc.tbs(
        serial=pki["leaf"].serial_number,
        hash_alg=CertIdHash.SHA1 if isinstance(alg, hashes.SHA1) else CertIdHash.SHA256,
        status=CertStatusKind.GOOD if revoked_at is None else CertStatusKind.REVOKED,
        this_update=NOW,
        next_update=NOW + dt.timedelta(days=4),
        produced_at=ref.produced_at_utc,  # the builder takes "now"
        revoked_at=revoked_at,
        reason=code,
    )
    assert tbs == ref.tbs_response_bytes
    assert enc.response(tbs, ref.signature) == ref_der
    # Stored without its envelope, put back in one from the store: the same bytes.
    signed = tbs + ref.signature
    assert responder_key_hash(signed) == enc.envelope.key_hash
    assert ResponseEnvelope(enc.envelope.key_hash, enc.envelope.encoded).wrap(signed) == ref_der
    stored = {enc.envelope.key_hash: enc.envelope.encoded}
    assert Envelopes(stored.get).response(signed) == ref_der
    # A whole response (as hanko stored before) is served as it is.
    assert responder_key_hash(ref_der) is None
    assert Envelopes(stored.get).response(ref_der) == ref_der
    # No envelope for that key, or damaged bytes: no answer rather than a wrong one.
    assert Envelopes({}.get).response(signed) is None
    assert Envelopes(stored.get).response(signed[:40]) is None


def test_envelope_refuses_what_is_not_one(pki: dict) -> None:
    good = ResponseEncoder(
        issuer=pki["ca"], responder=pki["responder"], signature_algorithm=ECDSA_SHA256
    ).envelope
    for key_hash, encoded in (
        (good.key_hash, b""),
        (good.key_hash, ECDSA_SHA256),  # no certs field
        (good.key_hash, good.encoded + b"\x00"),  # trailing bytes
        (good.key_hash[:19], good.encoded),
    ):
        with pytest.raises(ValueError, match="not a response envelope"):
            ResponseEnvelope(key_hash, encoded)
    with pytest.raises(ValueError, match="not a response envelope"):
        ResponseEncoder(issuer=pki["ca"], responder=pki["responder"], signature_algorithm=b"")


def test_error_responses_parse() -> None:
    for status in (
        ResponseStatus.MALFORMED_REQUEST,
        ResponseStatus.UNAUTHORIZED,
        ResponseStatus.TRY_LATER,
    ):
        resp = ocsp.load_der_ocsp_response(error_response(status))
        assert resp.response_status.value == int(status)


def test_rejects_truncation_trailing_data_and_garbage(pki: dict) -> None:
    der = _request(pki["leaf"], pki["ca"], hashes.SHA1())
    for cut in range(len(der)):
        with pytest.raises(MalformedOcspRequest):
            parse_request(der[:cut])
    with pytest.raises(MalformedOcspRequest):
        parse_request(der + b"\x00")
    rng = random.Random(5019)
    for _ in range(2000):
        with pytest.raises(MalformedOcspRequest):
            parse_request(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 120))))


def test_bit_flips_never_escape_as_other_errors(pki: dict) -> None:
    der = _request(pki["leaf"], pki["ca"], hashes.SHA256(), nonce=b"n" * 16)
    rng = random.Random(6960)
    parsed = 0
    for _ in range(3000):
        flipped = bytearray(der)
        i = rng.randrange(len(flipped))
        flipped[i] ^= 1 << rng.randrange(8)
        try:
            req = parse_request(bytes(flipped))
        except MalformedOcspRequest:
            continue
        parsed += 1
        assert len(req.cert_ids) == 1  # a flip in a hash or serial still parses
    assert 0 < parsed < 3000


def test_several_requests_and_absent_hash_parameters(pki: dict) -> None:
    one = _request(pki["leaf"], pki["ca"], hashes.SHA1())
    req = parse_request(one)
    # Re-encode by hand: two Requests, the second with hashAlgorithm parameters absent.
    from core.base.der import encode_unsigned_integer, sequence, tlv

    h = req.cert_ids[0]
    cid1 = sequence(
        bytes.fromhex("300906052b0e03021a0500")
        + tlv(4, h.issuer_name_hash)
        + tlv(4, h.issuer_key_hash)
        + encode_unsigned_integer(7)
    )
    cid2 = sequence(
        bytes.fromhex("300706052b0e03021a")
        + tlv(4, h.issuer_name_hash)
        + tlv(4, h.issuer_key_hash)
        + encode_unsigned_integer(8)
    )
    der = sequence(sequence(sequence(sequence(cid1) + sequence(cid2))))
    parsed = parse_request(der)
    assert [c.serial for c in parsed.cert_ids] == [7, 8]
    assert all(c.hash is CertIdHash.SHA1 for c in parsed.cert_ids)


def test_pkilint_flags_a_response_it_should(pki: dict, tmp_path: Path) -> None:
    """The lint helper the interop tests rely on does find errors: a response whose
    nextUpdate precedes its thisUpdate."""
    enc = ResponseEncoder(
        issuer=pki["ca"],
        responder=pki["responder"],
        signature_algorithm=ECDSA_SHA256,
    )
    tbs = enc.tbs(
        serial=5,
        hash_alg=CertIdHash.SHA1,
        status=CertStatusKind.GOOD,
        this_update=NOW,
        next_update=NOW - dt.timedelta(hours=1),
        produced_at=NOW,
    )
    bad = tmp_path / "bad.der"
    bad.write_bytes(enc.response(tbs, b"0"))
    assert any("negative_validity" in line for line in lint_ocsp(bad))
