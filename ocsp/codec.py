"""OCSP requests in, BasicOCSPResponses out (RFC 6960, RFC 9919), with no I/O.

Requests are parsed by hand: strict DER, only what a responder needs, and fast enough
to sit on the request path. Responses are encoded by hand too, in two halves, so that
many of them can be signed in one batch: `ResponseEncoder.tbs()` gives the
ResponseData to sign, `ResponseEncoder.response()` wraps it with the signature into
the OCSPResponse a client receives. The encoding is byte-identical to cryptography's
OCSPResponseBuilder (tests/ocsp/test_codec.py holds it to that).
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from core.base.der import (
    encode_unsigned_integer,
    generalized_time,
    generalized_time_at,
    length,
    read_tlv,
    sequence,
    tlv,
)
from core.base.errors import MalformedOcspRequest
from core.base.reasons import RevocationReason

_SEQUENCE = 0x30
_OCTET_STRING = 0x04
_INTEGER = 0x02
_OID = 0x06
_NULL = 0x05

# id-pkix-ocsp-basic and id-pkix-ocsp-nonce
_OID_BASIC = bytes.fromhex("06092b0601050507300101")
_OID_NONCE_CONTENT = bytes.fromhex("2b0601050507300102")


class CertIdHash(enum.IntEnum):
    """The hash of a CertID's issuerNameHash and issuerKeyHash; values are stable ids
    used in the store's response records."""

    SHA1 = 1
    SHA256 = 2

    @property
    def algorithm_der(self) -> bytes:
        return _HASH_ALG_DER[self]

    def digest(self, data: bytes) -> bytes:
        return hashlib.new(_HASH_NAMES[self], data).digest()

    @classmethod
    def from_name(cls, name: str) -> CertIdHash:
        return {"sha1": cls.SHA1, "sha256": cls.SHA256}[name]


_HASH_NAMES = {CertIdHash.SHA1: "sha1", CertIdHash.SHA256: "sha256"}
# AlgorithmIdentifier with NULL parameters, as OpenSSL and cryptography write them.
_HASH_ALG_DER = {
    CertIdHash.SHA1: bytes.fromhex("300906052b0e03021a0500"),
    CertIdHash.SHA256: bytes.fromhex("300d06096086480165030402010500"),
}
# The OID content octets; requests may omit the NULL parameters (RFC 5754).
_HASH_BY_OID = {
    bytes.fromhex("2b0e03021a"): CertIdHash.SHA1,
    bytes.fromhex("608648016503040201"): CertIdHash.SHA256,
}
_DIGEST_SIZE = {CertIdHash.SHA1: 20, CertIdHash.SHA256: 32}
# Other hash algorithms clients may use; recognised so that they get `unauthorized`
# (we hold no response for them) rather than `malformedRequest`.
_OTHER_HASH_OIDS = {
    bytes.fromhex("608648016503040202"): 48,  # SHA-384
    bytes.fromhex("608648016503040203"): 64,  # SHA-512
}


class ResponseStatus(enum.IntEnum):
    SUCCESSFUL = 0
    MALFORMED_REQUEST = 1
    INTERNAL_ERROR = 2
    TRY_LATER = 3
    SIG_REQUIRED = 5
    UNAUTHORIZED = 6


def error_response(status: ResponseStatus) -> bytes:
    """An OCSPResponse with no responseBytes: the answer for every non-successful case."""
    return sequence(tlv(0x0A, bytes((int(status),))))


@dataclass(frozen=True, slots=True)
class CertId:
    hash: CertIdHash | None  # None: a hash algorithm we recognise but hold nothing for
    issuer_name_hash: bytes
    issuer_key_hash: bytes
    serial: int


@dataclass(frozen=True, slots=True)
class OcspRequest:
    cert_ids: tuple[CertId, ...]
    nonce: bytes | None  # present but ignored: pre-signed responses carry no nonce


def _expect(data: bytes, pos: int, end: int, tag: int, what: str) -> tuple[int, int]:
    if pos >= end:
        raise MalformedOcspRequest(f"{what} is missing")
    t, start, stop = read_tlv(data, pos)
    if t != tag:
        raise MalformedOcspRequest(f"{what}: expected tag {tag:#04x}, found {t:#04x}")
    if stop > end:
        raise MalformedOcspRequest(f"{what} runs past its container")
    return start, stop


def _parse_cert_id(data: bytes, pos: int, end: int) -> tuple[CertId, int]:
    start, stop = _expect(data, pos, end, _SEQUENCE, "CertID")
    alg_start, alg_end = _expect(data, start, stop, _SEQUENCE, "CertID.hashAlgorithm")
    oid_start, oid_end = _expect(data, alg_start, alg_end, _OID, "hashAlgorithm OID")
    if oid_end != alg_end:  # parameters: absent, or NULL
        p_start, p_end = _expect(data, oid_end, alg_end, _NULL, "hashAlgorithm parameters")
        if p_start != p_end or p_end != alg_end:
            raise MalformedOcspRequest("hashAlgorithm parameters must be NULL or absent")
    oid = data[oid_start:oid_end]
    hash_alg = _HASH_BY_OID.get(oid)
    size = _DIGEST_SIZE[hash_alg] if hash_alg is not None else _OTHER_HASH_OIDS.get(oid)
    if size is None:
        raise MalformedOcspRequest("unknown CertID hash algorithm")
    n_start, n_end = _expect(data, alg_end, stop, _OCTET_STRING, "issuerNameHash")
    k_start, k_end = _expect(data, n_end, stop, _OCTET_STRING, "issuerKeyHash")
    if n_end - n_start != size or k_end - k_start != size:
        raise MalformedOcspRequest("issuer hashes do not match the hash algorithm's size")
    s_start, s_end = _expect(data, k_end, stop, _INTEGER, "serialNumber")
    if s_end != stop:
        raise MalformedOcspRequest("trailing data in CertID")
    serial_octets = data[s_start:s_end]
    if not serial_octets or (
        len(serial_octets) > 1 and serial_octets[0] == 0 and serial_octets[1] < 0x80
    ):
        raise MalformedOcspRequest("serialNumber is not minimally encoded")
    if serial_octets[0] & 0x80 or len(serial_octets) > 21:
        raise MalformedOcspRequest("serialNumber is negative or longer than 20 octets")
    return (
        CertId(
            hash_alg,
            data[n_start:n_end],
            data[k_start:k_end],
            int.from_bytes(serial_octets, "big"),
        ),
        stop,
    )


def _find_nonce(data: bytes, start: int, end: int) -> bytes | None:
    """The nonce among Extensions (SEQUENCE OF Extension), if any."""
    nonce = None
    pos = start
    while pos < end:
        e_start, e_end = _expect(data, pos, end, _SEQUENCE, "Extension")
        o_start, o_end = _expect(data, e_start, e_end, _OID, "extnID")
        v_pos = o_end
        if v_pos < e_end and data[v_pos] == 0x01:  # critical BOOLEAN
            v_pos = _expect(data, v_pos, e_end, 0x01, "critical")[1]
        v_start, v_end = _expect(data, v_pos, e_end, _OCTET_STRING, "extnValue")
        if v_end != e_end:
            raise MalformedOcspRequest("trailing data in Extension")
        if data[o_start:o_end] == _OID_NONCE_CONTENT:
            nonce = data[v_start:v_end]
        pos = e_end
    return nonce


def parse_request(data: bytes) -> OcspRequest:
    """Parse a DER OCSPRequest strictly; raise MalformedOcspRequest for anything else."""
    try:
        return _parse(data)
    except MalformedOcspRequest:
        raise
    except (ValueError, IndexError) as exc:
        raise MalformedOcspRequest(f"not DER: {exc}") from None


def _parse(data: bytes) -> OcspRequest:
    total = len(data)
    start, stop = _expect(data, 0, total, _SEQUENCE, "OCSPRequest")
    if stop != total:
        raise MalformedOcspRequest("trailing data after OCSPRequest")
    tbs_start, tbs_end = _expect(data, start, stop, _SEQUENCE, "TBSRequest")
    if tbs_end != stop:
        # optionalSignature [0]: accepted, not required, not checked.
        _expect(data, tbs_end, stop, 0xA0, "optionalSignature")
        if read_tlv(data, tbs_end)[2] != stop:
            raise MalformedOcspRequest("trailing data after optionalSignature")
    pos = tbs_start
    tag = data[pos] if pos < tbs_end else None
    if tag == 0xA0:  # version [0] EXPLICIT INTEGER, and only v1 exists
        v_start, v_end = _expect(data, pos, tbs_end, 0xA0, "version")
        i_start, i_end = _expect(data, v_start, v_end, _INTEGER, "version")
        if data[i_start:i_end] != b"\x00" or i_end != v_end:
            raise MalformedOcspRequest("unsupported OCSP request version")
        pos = v_end
        tag = data[pos] if pos < tbs_end else None
    if tag == 0xA1:  # requestorName: allowed, ignored
        pos = _expect(data, pos, tbs_end, 0xA1, "requestorName")[1]
    list_start, list_end = _expect(data, pos, tbs_end, _SEQUENCE, "requestList")
    cert_ids: list[CertId] = []
    p = list_start
    while p < list_end:
        r_start, r_end = _expect(data, p, list_end, _SEQUENCE, "Request")
        cert_id, after = _parse_cert_id(data, r_start, r_end)
        if after != r_end:  # singleRequestExtensions [0]: allowed, ignored
            e_start, e_end = _expect(data, after, r_end, 0xA0, "singleRequestExtensions")
            if e_end != r_end:
                raise MalformedOcspRequest("trailing data in Request")
            _expect(data, e_start, e_end, _SEQUENCE, "Extensions")
        cert_ids.append(cert_id)
        p = r_end
    if not cert_ids:
        raise MalformedOcspRequest("requestList is empty")
    nonce = None
    if list_end != tbs_end:
        x_start, x_end = _expect(data, list_end, tbs_end, 0xA2, "requestExtensions")
        if x_end != tbs_end:
            raise MalformedOcspRequest("trailing data in TBSRequest")
        s_start, s_end = _expect(data, x_start, x_end, _SEQUENCE, "Extensions")
        if s_end != x_end:
            raise MalformedOcspRequest("trailing data in requestExtensions")
        nonce = _find_nonce(data, s_start, s_end)
    return OcspRequest(tuple(cert_ids), nonce)


def _key_hash_input(cert: x509.Certificate) -> bytes:
    """The subjectPublicKey BIT STRING's value without its unused-bits octet (RFC 6960
    4.1.1 and 4.2.1: the hash excludes tag, length and that octet)."""
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    _, start, end = read_tlv(spki, 0)
    _, _, alg_end = read_tlv(spki, start)
    tag, bits_start, bits_end = read_tlv(spki, alg_end)
    if tag != 0x03 or bits_end != end:
        raise ValueError("SubjectPublicKeyInfo without a BIT STRING key")
    return spki[bits_start + 1 : bits_end]


class IssuerHashes:
    """An issuer's CertID hashes for every CertIdHash: what requests must match."""

    def __init__(self, issuer: x509.Certificate) -> None:
        name = issuer.subject.public_bytes()
        key = _key_hash_input(issuer)
        self.by_hash = {h: (h.digest(name), h.digest(key)) for h in CertIdHash}

    def matches(self, cert_id: CertId) -> bool:
        if cert_id.hash is None:
            return False
        name_hash, key_hash = self.by_hash[cert_id.hash]
        return cert_id.issuer_name_hash == name_hash and cert_id.issuer_key_hash == key_hash


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
        self.issuer_hashes = IssuerHashes(issuer)
        self.envelope = ResponseEnvelope.for_responder(responder, signature_algorithm)
        self._responder_id = tlv(0xA2, tlv(_OCTET_STRING, self.envelope.key_hash))
        self._cert_id_prefix = {
            h: h.algorithm_der + tlv(_OCTET_STRING, names) + tlv(_OCTET_STRING, key)
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
                b"\x30", length(len(head) + len(list_hdr) + list_len), head, list_hdr, one_hdr,
                cid_hdr, prefix,
            )
        )  # fmt: skip

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
        if tag != _SEQUENCE or certs_tag != 0xA0 or end != len(encoded) or len(key_hash) != 20:
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
        key_hash = hashlib.sha1(_key_hash_input(responder)).digest()  # noqa: S324 - RFC 6960 KeyHash is SHA-1
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
        rb_len = len(_OID_BASIC) + len(octets_hdr) + octets_len
        rb_hdr = b"\x30" + length(rb_len)
        explicit_len = len(rb_hdr) + rb_len
        explicit_hdr = b"\xa0" + length(explicit_len)
        total = 3 + len(explicit_hdr) + explicit_len
        return b"".join(
            (
                b"\x30", length(total), b"\x0a\x01\x00", explicit_hdr, rb_hdr, _OID_BASIC,
                octets_hdr, basic_hdr, tbs, self._alg, sig_hdr, b"\x00", signature, self._certs,
            )
        )  # fmt: skip


def responder_key_hash(signed: bytes) -> bytes | None:
    """The responder key a stored `ResponseData || signature` names, to find its
    envelope; None for anything else (a whole OCSPResponse, as hanko stored before)."""
    if len(signed) < 2 or signed[0] != _SEQUENCE:
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
