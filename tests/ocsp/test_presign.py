"""The Presigner's batch path (the refresher's) against the codec's one-response path."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from core.errors import SignerError, StoreError
from core.store.records import CertRecord, CertStatus, OcspRecord, RevocationReason
from ocsp.codec import CertIdHash, CertStatusKind, ResponseEncoder
from ocsp.presign import Presigner
from signer.algorithms import SignAlgorithm
from tests.ocsp.test_codec import ECDSA_SHA256, _cert

NOW = dt.datetime(2026, 11, 21, 12, 0, 0, tzinfo=dt.UTC)
VALIDITY = dt.timedelta(days=4)


@pytest.fixture(scope="module")
def presigner() -> Presigner:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test Issuing CA")])
    own = ec.generate_private_key(ec.SECP256R1())
    encoder = ResponseEncoder(
        issuer=_cert("Test Issuing CA", key, name, key),
        responder=_cert("Test OCSP", own, name, key, ocsp_signing=True),
        signature_algorithm=ECDSA_SHA256,
    )
    return Presigner(
        encoder,
        key_label="ocsp",
        algorithm=SignAlgorithm.ECDSA_SHA256,
        hashes=[CertIdHash.SHA1, CertIdHash.SHA256],
        validity=VALIDITY,
        refresh_fraction=0.5,
    )


def _record(
    serial: bytes,
    *,
    revoked_at: int | None = None,
    reason: RevocationReason | None = RevocationReason.KEY_COMPROMISE,
) -> CertRecord:
    return CertRecord(
        serial=serial,
        issuer=b"k" * 20,
        status=CertStatus.GOOD if revoked_at is None else CertStatus.REVOKED,
        not_before=0,
        not_after=2**31,
        names=["a.example.com"],
        account="org",
        profile="ov",
        partition=0,
        der=b"",
        revoked_at=revoked_at,
        reason=None if revoked_at is None else reason,
    )


# A serial whose first octet has its high bit set needs a leading zero in DER.
SERIALS = [bytes.fromhex("7f" + "11" * 15), bytes.fromhex("80" + "22" * 19), b"\x01"]


@pytest.mark.parametrize("later", [0, 1, 86_400])
def test_batch_path_matches_the_codec(presigner: Presigner, later: int) -> None:
    """Every serial length and status length (the batch path caches what precedes the
    serial per such shape), and a second batch at a later second (the cache is per
    second) after a first one at NOW."""
    presigner.for_records([_record(SERIALS[0])], at=int(NOW.timestamp()))
    now = NOW + dt.timedelta(seconds=later)
    at = int(now.timestamp())
    revoked_at = at - 3600
    records = (
        [_record(s) for s in SERIALS]
        + [_record(s, revoked_at=revoked_at) for s in SERIALS]
        + [_record(s, revoked_at=revoked_at, reason=None) for s in SERIALS]
    )
    pendings = presigner.for_records(records, at=at)
    assert [p.serial for p in pendings] == [r.serial for r in records]
    for rec, p in zip(records, pendings, strict=True):
        assert (p.this_update, p.next_update) == (at, at + int(VALIDITY.total_seconds()))
        assert p.refresh_at == at + int(VALIDITY.total_seconds() / 2)
        revoked = rec.revoked_at is not None
        for hash_id, tbs in p.tbs:
            assert tbs == presigner.encoder.tbs(
                serial=int.from_bytes(rec.serial, "big"),
                hash_alg=CertIdHash(hash_id),
                status=CertStatusKind.REVOKED if revoked else CertStatusKind.GOOD,
                this_update=now,
                next_update=now + VALIDITY,
                produced_at=now,
                revoked_at=now - dt.timedelta(hours=1) if revoked else None,
                reason=rec.reason,
            )
        # The one-serial path (issuance, revocation) builds the same bytes.
        assert p == presigner.pending(
            rec.serial, now=now, revoked_at=rec.revoked_at, reason=rec.reason
        )


def test_a_revoked_record_without_its_time_is_never_signed_good(presigner: Presigner) -> None:
    broken = CertRecord(
        serial=b"\x05",
        issuer=b"k" * 20,
        status=CertStatus.REVOKED,
        not_before=0,
        not_after=2**31,
        names=[],
        account="org",
        profile="ov",
        partition=0,
        der=b"",
    )
    with pytest.raises(StoreError, match="revoked without a time"):
        presigner.for_records([_record(b"\x04"), broken], at=int(NOW.timestamp()))


def test_records_take_their_signatures_in_sign_items_order(presigner: Presigner) -> None:
    """`records` pairs each pending with its own signatures, as `sign_items` laid them
    out; a failed signature makes that serial's record the error, and only that one."""
    at = int(NOW.timestamp())
    pendings = presigner.for_records([_record(s) for s in SERIALS], at=at)
    items = presigner.sign_items(*pendings)
    sigs: list[bytes | SignerError] = [b"sig-%d" % i for i in range(len(items))]
    sigs[3] = SignerError("HSM said no")  # the second hash of the second serial
    out = presigner.records(pendings, sigs)
    assert out[1] is sigs[3]
    for i in (0, 2):
        rec = out[i]
        assert isinstance(rec, OcspRecord)
        assert rec.signed == {
            h: tbs + b"sig-%d" % (2 * i + n) for n, (h, tbs) in enumerate(pendings[i].tbs)
        }
        assert rec == presigner.record(pendings[i], sigs[2 * i : 2 * i + 2])
        assert rec.envelope is not None
        assert rec.envelope.key_hash == presigner.encoder.envelope.key_hash
    with pytest.raises(ValueError, match="more signatures"):
        presigner.records(pendings[:2], sigs)
    with pytest.raises(ValueError, match="fewer signatures"):
        presigner.records(pendings, sigs[:-1])
