"""Pre-signing: from a certificate's status to the responses the responder serves.

Shared by issuance (a "good" response in the same commit as the certificate), by
revocation (the "revoked" response in the same commit as the revocation) and by the
refresher (re-signing before the refresh point). Pure: it builds what to sign and puts
the signatures in place; signing and storing are the callers' business.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import msgspec

from core.base.clock import from_epoch, to_epoch
from core.base.der import integer_from_octets
from core.base.errors import ResponderCertificateExpiring, SignerError, StoreError
from core.base.reasons import RevocationReason
from core.store.records import CertRecord, CertStatus, CertStatusView, OcspEnvelope, OcspRecord
from ocsp.codec import CertIdHash
from ocsp.response_codec import GOOD_STATUS, ResponseEncoder, ResponseEnvelope, revoked_status_at
from signer.algorithms import SignAlgorithm

_REVOKED = CertStatus.REVOKED
# The shortest response validity the BR allow (4.9.10: eight hours): a responder
# certificate with less left than this signs nothing more.
MIN_VALIDITY = 8 * 3600


def _status(revoked_at: int | None, reason: RevocationReason | None) -> bytes:
    """The encoded CertStatus: good, or revoked at `revoked_at` (epoch seconds)."""
    if revoked_at is None:
        return GOOD_STATUS
    return revoked_status_at(revoked_at, reason)


def lacks_revocation_time(rec: CertRecord | CertStatusView) -> bool:
    """A record marked revoked without its time: neither "good" nor "revoked" can be
    signed for it (`for_records` refuses it; the refresher sets it aside)."""
    return rec.status == _REVOKED and rec.revoked_at is None


class Pending(msgspec.Struct, frozen=True, gc=False):
    """One serial's responses, built and waiting for their signatures. (A Struct: a
    frozen dataclass cost a microsecond per construction, once per refreshed serial.)"""

    serial: bytes
    this_update: int
    next_update: int
    refresh_at: int
    tbs: tuple[tuple[int, bytes], ...]  # (CertIdHash value, ResponseData to sign)


class Presigner:
    def __init__(
        self,
        encoder: ResponseEncoder,
        *,
        key_label: str,
        algorithm: SignAlgorithm,
        hashes: Sequence[CertIdHash],
        validity: dt.timedelta,
        refresh_fraction: float,
    ) -> None:
        if not hashes:
            raise ValueError("pre-sign for at least one CertID hash")
        self.encoder = encoder
        self.key_label = key_label
        self.algorithm = algorithm
        self.hashes = tuple(hashes)
        self._hash_ids = tuple((h, int(h)) for h in self.hashes)
        self._validity = int(validity.total_seconds())
        self._refresh_after = int(self._validity * refresh_fraction)
        self._parts_at = -1
        self._parts_at_cache = (b"", b"")
        # (serial DER length, status length) -> (CertIdHash value, tbs_lead) per hash
        self._leads: dict[tuple[int, int], tuple[tuple[int, bytes], ...]] = {}
        self._times = (0, 0)  # (next_update, refresh_at) of responses made at _parts_at
        self._fraction = refresh_fraction
        self._adopt(encoder.envelope)

    @property
    def validity_seconds(self) -> int:
        return self._validity

    @property
    def key_hash(self) -> bytes:
        """The responder key's hash, under which the store keeps its envelope."""
        return self._envelope.key_hash

    @property
    def responder_not_after(self) -> int:
        """notAfter of the responder certificate responses are signed under (epoch)."""
        return self._not_after

    def adopt(self, encoded: bytes) -> bool:
        """Sign under the certificate in `encoded` (an envelope for the same key, as the
        store keeps it) if it is more recent than the current one. True if adopted."""
        if encoded == self._envelope.encoded:
            return False
        env = ResponseEnvelope(self._envelope.key_hash, encoded)
        if to_epoch(env.certificate().not_valid_before_utc) <= self._envelope.since:
            return False
        self._adopt(env)
        return True

    def _adopt(self, env: ResponseEnvelope) -> None:
        cert = env.certificate()
        self._envelope = OcspEnvelope(
            key_hash=env.key_hash,
            encoded=env.encoded,
            since=to_epoch(cert.not_valid_before_utc),
        )
        self._not_after = to_epoch(cert.not_valid_after_utc)
        self._parts_at = -1  # response times depend on the certificate's

    def pending(
        self,
        serial: bytes,
        *,
        now: dt.datetime,
        revoked_at: int | None = None,
        reason: RevocationReason | None = None,
    ) -> Pending:
        return self._pending(serial, to_epoch(now), _status(revoked_at, reason))

    def for_records(
        self, records: Sequence[CertRecord | CertStatusView], *, at: int
    ) -> list[Pending]:
        """Each record's responses as of `at` (epoch seconds), for its current status:
        the refresher's batch path."""
        make = self._pending
        out = []
        for rec in records:
            if rec.status != _REVOKED:
                status = GOOD_STATUS
            elif rec.revoked_at is None:  # lacks_revocation_time: never "good" for it
                raise StoreError(f"certificate {rec.serial.hex()} is revoked without a time")
            else:
                status = _status(rec.revoked_at, rec.reason)
            out.append(make(rec.serial, at, status))
        return out

    def _pending(self, serial: bytes, at: int, status: bytes) -> Pending:
        if self._parts_at != at:
            self._parts(at)
        serial_der = integer_from_octets(serial)
        shape = (len(serial_der), len(status))
        leads = self._leads.get(shape) or self._lead(shape)
        tail = status + self._parts_at_cache[0]
        tbs = tuple([(i, lead + serial_der + tail) for i, lead in leads])
        next_update, refresh_at = self._times
        return Pending(serial, at, next_update, refresh_at, tbs)

    def _parts(self, at: int) -> None:
        # Every response of a batch shares its times: encode them once per second, and
        # with them what precedes the serial, once per serial and status length.
        next_update, refresh_at = self.response_times(at)
        this_update = from_epoch(at)
        self._parts_at_cache = self.encoder.parts(this_update, from_epoch(next_update), this_update)
        self._times = (next_update, refresh_at)
        self._parts_at = at
        self._leads = {}

    def response_times(self, at: int) -> tuple[int, int]:
        """(nextUpdate, refresh point) of a response signed at `at` (epoch seconds).

        No response outlives the responder certificate it is signed under: nextUpdate
        is cut to its notAfter, and the refresh point comes as early in that shorter
        interval. Under MIN_VALIDITY left, refuse. (A response made before the
        certificate's notBefore is not refused: only a clock set back, or a test's,
        makes one, and a client checks the certificate at its own time.)"""
        next_update = min(at + self._validity, self._not_after)
        shortest = min(MIN_VALIDITY, self._validity)
        if next_update - at < shortest:
            # No time of day in the message: a retry each second repeats it word for word.
            raise ResponderCertificateExpiring(
                "the OCSP responder certificate (valid "
                f"{from_epoch(self._envelope.since).isoformat()} to "
                f"{from_epoch(self._not_after).isoformat()}) does not cover a response "
                f"valid {shortest} s from now: nothing more is signed with it; renew it "
                "with `hanko ca renew-responder`"
            )
        if next_update == at + self._validity:
            return next_update, at + self._refresh_after
        return next_update, at + int((next_update - at) * self._fraction)

    def _lead(self, shape: tuple[int, int]) -> tuple[tuple[int, bytes], ...]:
        times, head = self._parts_at_cache
        lead = self.encoder.tbs_lead
        leads = tuple((i, lead(h, shape[0], shape[1], times, head)) for h, i in self._hash_ids)
        self._leads[shape] = leads
        return leads

    def sign_items(self, *pendings: Pending) -> list[tuple[str, SignAlgorithm, bytes]]:
        """What to hand the signer for `pendings`, in order (`records` takes them back)."""
        label, alg = self.key_label, self.algorithm
        return [(label, alg, tbs) for p in pendings for _, tbs in p.tbs]

    def records(
        self, pendings: Sequence[Pending], signatures: Sequence[bytes | SignerError]
    ) -> list[OcspRecord | SignerError]:
        """`record` for each of `pendings`, whose signatures follow one another in
        `signatures` as `sign_items` laid them out (the refresher's batch path)."""
        out: list[OcspRecord | SignerError] = []
        sigs = iter(signatures)
        env = self._envelope
        for p in pendings:
            signed: dict[int, bytes] = {}
            error: SignerError | None = None
            for h, tbs in p.tbs:
                sig = next(sigs, None)
                if sig is None:
                    raise ValueError("fewer signatures than responses")
                if isinstance(sig, SignerError):
                    if error is None:  # report the first
                        error = sig
                else:
                    signed[h] = tbs + sig
            out.append(
                error
                if error is not None
                else OcspRecord(
                    this_update=p.this_update,
                    next_update=p.next_update,
                    refresh_at=p.refresh_at,
                    signed=signed,
                    envelope=env,
                )
            )
        if next(sigs, None) is not None:
            raise ValueError("more signatures than responses")
        return out

    def record(
        self, pending: Pending, signatures: Sequence[bytes | SignerError]
    ) -> OcspRecord | SignerError:
        """One pending's record, or the first error among its signatures."""
        return self.records([pending], signatures)[0]
