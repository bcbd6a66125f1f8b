"""BasicOCSPResponses out (RFC 6960, RFC 9919), with no I/O.

Responses are encoded by hand, in two halves, so that many of them can be signed in one
batch: `ResponseEncoder.tbs()` gives the ResponseData to sign,
`ResponseEncoder.response()` wraps it with the signature into the OCSPResponse a client
receives. The encoding is byte-identical to cryptography's OCSPResponseBuilder
(tests/ocsp/test_codec.py holds it to that). The store keeps responses without their
envelope (signature algorithm and responder certificate): `ResponseEnvelope` and
`Envelopes` put it back on the way out.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
from collections.abc import Callable

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from core.base import der
from core.base.der import (
    encode_unsigned_integer,
    generalized_time,
    generalized_time_at,
    length,
    read_tlv,
    sequence,
    tlv,
)
from core.base.reasons import RevocationReason
from ocsp.codec import OID_BASIC, CertIdHash, IssuerHashes, key_hash_input


class CertStatusKind(enum.IntEnum):
    GOOD = 0
    REVOKED = 1


# Enum members read through the class cost a descriptor call; the hot paths use these.
_GOOD = CertStatusKind.GOOD
_UNSPECIFIED = RevocationReason.UNSPECIFIED
GOOD_STATUS = b"\x80\x00"  # certStatus good: [0] IMPLICIT NULL


def revoked_status(revoked_at: dt.datetime, reason: RevocationReason | None) -> bytes:
    """certStatus revoked: [1] IMPLICIT RevokedInfo."""
    return _revoked_status(generalized_time(revoked_at), reason)


def revoked_status_at(revoked_at: int, reason: RevocationReason | None) -> bytes:
    """`revoked_status` of a revocation time in epoch seconds (as stored)."""
    return _revoked_status(generalized_time_at(revoked_at), reason)


def _revoked_status(info: bytes, reason: RevocationReason | None) -> bytes:
    """RevokedInfo from its revocationTime, already encoded."""
    # BR 7.2.2 / 7.3: no reason for unspecified, as in the CRL entry.
    if reason is not None and reason != _UNSPECIFIED:
        info += tlv(0xA0, tlv(0x0A, bytes((int(reason),))))
    return tlv(0xA1, info)


class ResponseEncoder:
    """Encodes BasicOCSPResponses of one issuer, signed by one delegated responder.

    Responder ID by key hash (RFC 6960 4.2.2.3); the responder certificate goes in
    `certs` so clients can check its delegation and its ocsp-nocheck."""

    def __init__(
        self,
        *,
        issuer: x509.Certificate,
        responder: x509.Certificate,
        signature_algorithm: bytes,
    ) -> None:
        self.issuer = issuer
        self.issuer_hashes = IssuerHashes(issuer)
        self.envelope = ResponseEnvelope.for_responder(responder, signature_algorithm)
        self._responder_id = tlv(0xA2, tlv(der.OCTET_STRING, self.envelope.key_hash))
        self._cert_id_prefix = {
            h: h.algorithm_der + tlv(der.OCTET_STRING, names) + tlv(der.OCTET_STRING, key)
            for h, (names, key) in self.issuer_hashes.by_hash.items()
        }

    def tbs(
        self,
        *,
        serial: int,
        hash_alg: CertIdHash,
        status: CertStatusKind,
        this_update: dt.datetime,
        next_update: dt.datetime,
        produced_at: dt.datetime,
        revoked_at: dt.datetime | None = None,
        reason: RevocationReason | None = None,
    ) -> bytes:
        """The ResponseData to sign: one SingleResponse, no extensions, no nonce."""
        if status == _GOOD:
            cert_status = GOOD_STATUS
        elif revoked_at is None:
            raise ValueError("a revoked status needs its revocation time")
        else:
            cert_status = revoked_status(revoked_at, reason)
        times, head = self.parts(this_update, next_update, produced_at)
        return self.tbs_with(encode_unsigned_integer(serial), hash_alg, cert_status, times, head)

    def tbs_with(
        self, serial_der: bytes, hash_alg: CertIdHash, cert_status: bytes, times: bytes, head: bytes
    ) -> bytes:
        """`tbs` from parts already encoded (`serial_der` is the serial's DER INTEGER)."""
        return (
            self.tbs_lead(hash_alg, len(serial_der), len(cert_status), times, head)
            + serial_der
            + cert_status
            + times
        )

    def tbs_lead(
        self, hash_alg: CertIdHash, serial_len: int, status_len: int, times: bytes, head: bytes
    ) -> bytes:
        """What comes before the serial in `tbs_with`. It depends on the serial's and
        the status's lengths only, not on their bytes, so a batch (one `times` and
        `head`) makes it once per length: a response is then three concatenations."""
        prefix = self._cert_id_prefix[hash_alg]
        cid_len = len(prefix) + serial_len
        cid_hdr = b"\x30" + length(cid_len)
        one_len = len(cid_hdr) + cid_len + status_len + len(times)
        one_hdr = b"\x30" + length(one_len)
        list_len = len(one_hdr) + one_len
        list_hdr = b"\x30" + length(list_len)
        return b"".join(
            (
                b"\x30",
                length(len(head) + len(list_hdr) + list_len),
                head,
                list_hdr,
                one_hdr,
                cid_hdr,
                prefix,
            )
        )

    def parts(
        self, this_update: dt.datetime, next_update: dt.datetime, produced_at: dt.datetime
    ) -> tuple[bytes, bytes]:
        """(times, head) for `tbs_with`: the encodings a whole batch shares, made once
        per batch by the caller (strftime is the dearest part of a response)."""
        times = generalized_time(this_update) + tlv(0xA0, generalized_time(next_update))
        return times, self._responder_id + generalized_time(produced_at)

    def response(self, tbs: bytes, signature: bytes) -> bytes:
        """The OCSPResponse (successful, id-pkix-ocsp-basic) around a signed ResponseData."""
        return self.envelope.response(tbs, signature)


# ResponseData || signature, as the store keeps a pre-signed response: our ResponseData
# always opens with the responder ID by key (after the SEQUENCE header).
_BY_KEY = b"\xa2\x16\x04\x14"


class ResponseEnvelope:
    """What turns a signed ResponseData into the OCSPResponse a client receives: the
    signature algorithm and the `certs` field holding the delegated responder's
    certificate.

    The store keeps each pre-signed response as `ResponseData || signature` and one
    envelope per responder key (`encoded`, under `key_hash`); readers `wrap` on the way
    out. The certificate is most of a response's bytes, so the refresher writes a third
    of what it would if it stored whole responses (docs/architecture.md, "Store")."""

    __slots__ = ("_alg", "_certs", "_tail_len", "encoded", "key_hash")

    def __init__(self, key_hash: bytes, encoded: bytes) -> None:
        """`encoded` is the signature AlgorithmIdentifier followed by the [0] certs
        field, as `for_responder` makes it and the store keeps it."""
        try:
            tag, _, alg_end = read_tlv(encoded)
            certs_tag, _, end = read_tlv(encoded, alg_end)
        except ValueError as exc:
            raise ValueError(f"not a response envelope: {exc}") from None
        if tag != der.SEQUENCE or certs_tag != 0xA0 or end != len(encoded) or len(key_hash) != 20:
            raise ValueError("not a response envelope")
        self.key_hash = key_hash
        self.encoded = encoded
        self._alg = encoded[:alg_end]
        self._certs = encoded[alg_end:]
        self._tail_len = len(encoded)

    @classmethod
    def for_responder(
        cls, responder: x509.Certificate, signature_algorithm: bytes
    ) -> ResponseEnvelope:
        key_hash = hashlib.sha1(key_hash_input(responder)).digest()  # noqa: S324 - RFC 6960 KeyHash is SHA-1
        certs = tlv(0xA0, sequence(responder.public_bytes(serialization.Encoding.DER)))
        return cls(key_hash, signature_algorithm + certs)

    def certificate(self) -> x509.Certificate:
        """The responder certificate in the `certs` field."""
        _, start, _ = read_tlv(self._certs)  # [0]
        _, start, _ = read_tlv(self._certs, start)  # SEQUENCE OF Certificate
        _, _, end = read_tlv(self._certs, start)
        return x509.load_der_x509_certificate(self._certs[start:end])

    def wrap(self, signed: bytes) -> bytes:
        """The OCSPResponse for a stored `ResponseData || signature`."""
        _, _, end = read_tlv(signed)
        return self.response(signed[:end], signed[end:])

    def response(self, tbs: bytes, signature: bytes) -> bytes:
        """The OCSPResponse (successful, id-pkix-ocsp-basic) around a signed ResponseData."""
        # Lengths first, then one join: each nesting level would otherwise copy the
        # whole response again (it runs once per pre-signed response).
        sig_len = len(signature) + 1
        sig_hdr = b"\x03" + length(sig_len)
        basic_len = len(tbs) + self._tail_len + len(sig_hdr) + sig_len
        basic_hdr = b"\x30" + length(basic_len)
        octets_len = len(basic_hdr) + basic_len
        octets_hdr = b"\x04" + length(octets_len)
        rb_len = len(OID_BASIC) + len(octets_hdr) + octets_len
        rb_hdr = b"\x30" + length(rb_len)
        explicit_len = len(rb_hdr) + rb_len
        explicit_hdr = b"\xa0" + length(explicit_len)
        total = 3 + len(explicit_hdr) + explicit_len
        return b"".join(
            (
                b"\x30",
                length(total),
                b"\x0a\x01\x00",
                explicit_hdr,
                rb_hdr,
                OID_BASIC,
                octets_hdr,
                basic_hdr,
                tbs,
                self._alg,
                sig_hdr,
                b"\x00",
                signature,
                self._certs,
            )
        )


def responder_key_hash(signed: bytes) -> bytes | None:
    """The responder key a stored `ResponseData || signature` names, to find its
    envelope; None for anything else (a whole OCSPResponse, as hanko stored before)."""
    if len(signed) < 2 or signed[0] != der.SEQUENCE:
        return None
    start = 2 if signed[1] < 0x80 else 2 + (signed[1] & 0x7F)
    if signed[start : start + 4] != _BY_KEY:
        return None
    return signed[start + 4 : start + 24]


class Envelopes:
    """Stored responses to OCSPResponses, for a reader of the store: the envelopes of
    the responder keys it meets are loaded through `load` (key hash -> encoded
    envelope) once and kept."""

    __slots__ = ("_by_key", "_load")

    def __init__(self, load: Callable[[bytes], bytes | None]) -> None:
        self._load = load
        self._by_key: dict[bytes, ResponseEnvelope] = {}

    def forget(self) -> None:
        """Load every envelope again when next met (a responder certificate was renewed)."""
        self._by_key.clear()

    def response(self, signed: bytes) -> bytes | None:
        """The OCSPResponse DER for a stored signed response; None if its envelope is
        not in the store (a record written without one: never by hanko's own paths)."""
        key = responder_key_hash(signed)
        if key is None:
            return signed  # a whole response, stored before envelopes were split off
        try:
            env = self._by_key.get(key)
            if env is None:
                encoded = self._load(key)
                if encoded is None:
                    return None
                env = self._by_key[key] = ResponseEnvelope(key, encoded)
            return env.wrap(signed)
        except ValueError:  # damaged bytes: better no answer than a broken one
            return None
