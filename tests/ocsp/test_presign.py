"""The Presigner's batch path (the refresher's) against the codec's one-response path."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from core.base.errors import ResponderCertificateExpiring, SignerError, StoreError
from core.base.reasons import RevocationReason
from core.store.records import CertRecord, CertStatus, OcspRecord
from ocsp.codec import CertIdHash
from ocsp.presign import Presigner
from ocsp.response_codec import CertStatusKind, ResponseEncoder, ResponseEnvelope
from signer.algorithms import SignAlgorithm
from tests.ocsp.test_codec import ECDSA_SHA256, _cert

NOW = dt.datetime(2026, 11, 21, 12, 0, 0, tzinfo=dt.UTC)
VALIDITY = dt.timedelta(days=4)


class _Pki:
    """An issuing CA and its responder (valid NOW - 1 day to NOW + 90 days)."""

    def __init__(self) -> None:
        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        self.name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test Issuing CA")])
        self.responder_key = ec.generate_private_key(ec.SECP256R1())
        self.responder = _cert(
            "Test OCSP", self.responder_key, self.name, self.ca_key, ocsp_signing=True
        )
        self.presigner = Presigner(
            ResponseEncoder(
                issuer=_cert("Test Issuing CA", self.ca_key, self.name, self.ca_key),
                responder=self.responder,
                signature_algorithm=ECDSA_SHA256,
            ),
            key_label="ocsp",
            algorithm=SignAlgorithm.ECDSA_SHA256,
            hashes=[CertIdHash.SHA1, CertIdHash.SHA256],
            validity=VALIDITY,
            refresh_fraction=0.5,
        )

    def renewed(self, not_before: dt.datetime, not_after: dt.datetime) -> x509.Certificate:
        """Another certificate for the responder's key."""
        return (
            x509.CertificateBuilder()
            .subject_name(self.responder.subject)
            .issuer_name(self.name)
            .public_key(self.responder_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .sign(self.ca_key, hashes.SHA256())
        )


@pytest.fixture(scope="module")
def presigner() -> Presigner:
    return _Pki().presigner


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
        organization="org",
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
        organization="org",
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


def _epoch(at: dt.datetime) -> int:
    return int(at.timestamp())


def test_no_response_outlives_the_responder_certificate() -> None:
    pki = _Pki()
    ps = pki.presigner
    end = _epoch(pki.responder.not_valid_after_utc)
    full = ps.pending(b"\x01", now=NOW)
    assert full.next_update == _epoch(NOW) + 4 * 86_400
    assert full.refresh_at == _epoch(NOW) + 2 * 86_400
    # Two days left, four days of validity configured: cut to the certificate's end,
    # refreshed half-way through what is left.
    at = end - 2 * 86_400
    short = ps.pending(b"\x01", now=dt.datetime.fromtimestamp(at, dt.UTC))
    assert (short.next_update, short.refresh_at) == (end, at + 86_400)
    # The ResponseData says so too (what clients see, not only the store's schedule).
    built = ps.encoder.tbs(
        serial=1, hash_alg=CertIdHash.SHA1, status=CertStatusKind.GOOD,
        this_update=dt.datetime.fromtimestamp(at, dt.UTC),
        next_update=pki.responder.not_valid_after_utc,
        produced_at=dt.datetime.fromtimestamp(at, dt.UTC),
    )  # fmt: skip
    assert dict(short.tbs)[int(CertIdHash.SHA1)] == built
    # Under eight hours left: nothing is signed.
    with pytest.raises(ResponderCertificateExpiring, match="renew-responder"):
        ps.pending(b"\x01", now=dt.datetime.fromtimestamp(end - 8 * 3600 + 1, dt.UTC))
    with pytest.raises(ResponderCertificateExpiring):
        ps.for_records([_record(b"\x02")], at=end - 3600)
    assert ps.pending(b"\x01", now=dt.datetime.fromtimestamp(end - 8 * 3600, dt.UTC))


def test_a_renewed_responder_certificate_is_adopted_an_older_one_is_not() -> None:
    pki = _Pki()
    ps = pki.presigner
    old = ps.records([ps.pending(b"\x01", now=NOW)], [b"s1", b"s2"])[0]
    assert isinstance(old, OcspRecord)
    assert old.envelope is not None
    renewed = pki.renewed(NOW, NOW + dt.timedelta(days=180))
    encoded = ResponseEnvelope.for_responder(renewed, ECDSA_SHA256).encoded
    assert ps.adopt(old.envelope.encoded) is False  # the one in use
    assert ps.adopt(encoded) is True
    assert ps.responder_not_after == _epoch(NOW + dt.timedelta(days=180))
    assert ps.adopt(old.envelope.encoded) is False  # older: never back
    assert ps.adopt(encoded) is False
    # Responses near the old certificate's end get their full validity again, and carry
    # the renewed certificate.
    at = dt.datetime.fromtimestamp(_epoch(pki.responder.not_valid_after_utc) - 3600, dt.UTC)
    rec = ps.records([ps.pending(b"\x01", now=at)], [b"s1", b"s2"])[0]
    assert isinstance(rec, OcspRecord)
    assert rec.envelope is not None
    assert rec.next_update == _epoch(at) + 4 * 86_400
    assert rec.envelope.encoded == encoded
    assert rec.envelope.since == _epoch(NOW) > old.envelope.since
    assert rec.envelope.key_hash == old.envelope.key_hash
    assert ResponseEnvelope(rec.envelope.key_hash, encoded).certificate() == renewed
