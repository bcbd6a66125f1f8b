"""OCSP requests in (RFC 6960, RFC 9919), with no I/O; the CertID hashes, the response
statuses and the issuer's hashes a CertID must match.

Requests are parsed by hand: strict DER, only what a responder needs, and fast enough
to sit on the request path. Responses are encoded in ocsp/response_codec.py.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from core.base import der
from core.base.der import (
    read_tlv,
    sequence,
    tlv,
)
from core.base.errors import MalformedOcspRequest

# id-pkix-ocsp-basic and id-pkix-ocsp-nonce
OID_BASIC = bytes.fromhex("06092b0601050507300101")
_OID_NONCE_CONTENT = bytes.fromhex("2b0601050507300102")


class CertIdHash(enum.IntEnum):
    """The hash of a CertID's issuerNameHash and issuerKeyHash; values are stable ids
    used in the store's response records."""

    SHA1 = 1
    SHA256 = 2

    @property
    def algorithm_der(self) -> bytes:
        return HASH_ALG_DER[self]

    def digest(self, data: bytes) -> bytes:
        return hashlib.new(_HASH_NAMES[self], data).digest()

    @classmethod
    def from_name(cls, name: str) -> CertIdHash:
        return {"sha1": cls.SHA1, "sha256": cls.SHA256}[name]


_HASH_NAMES = {CertIdHash.SHA1: "sha1", CertIdHash.SHA256: "sha256"}
# AlgorithmIdentifier with NULL parameters, as OpenSSL and cryptography write them.
HASH_ALG_DER = {
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
    start, stop = _expect(data, pos, end, der.SEQUENCE, "CertID")
    alg_start, alg_end = _expect(data, start, stop, der.SEQUENCE, "CertID.hashAlgorithm")
    oid_start, oid_end = _expect(data, alg_start, alg_end, der.OID, "hashAlgorithm OID")
    if oid_end != alg_end:  # parameters: absent, or NULL
        p_start, p_end = _expect(data, oid_end, alg_end, der.NULL, "hashAlgorithm parameters")
        if p_start != p_end or p_end != alg_end:
            raise MalformedOcspRequest("hashAlgorithm parameters must be NULL or absent")
    oid = data[oid_start:oid_end]
    hash_alg = _HASH_BY_OID.get(oid)
    size = _DIGEST_SIZE[hash_alg] if hash_alg is not None else _OTHER_HASH_OIDS.get(oid)
    if size is None:
        raise MalformedOcspRequest("unknown CertID hash algorithm")
    n_start, n_end = _expect(data, alg_end, stop, der.OCTET_STRING, "issuerNameHash")
    k_start, k_end = _expect(data, n_end, stop, der.OCTET_STRING, "issuerKeyHash")
    if n_end - n_start != size or k_end - k_start != size:
        raise MalformedOcspRequest("issuer hashes do not match the hash algorithm's size")
    s_start, s_end = _expect(data, k_end, stop, der.INTEGER, "serialNumber")
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
        e_start, e_end = _expect(data, pos, end, der.SEQUENCE, "Extension")
        o_start, o_end = _expect(data, e_start, e_end, der.OID, "extnID")
        v_pos = o_end
        if v_pos < e_end and data[v_pos] == 0x01:  # critical BOOLEAN
            v_pos = _expect(data, v_pos, e_end, 0x01, "critical")[1]
        v_start, v_end = _expect(data, v_pos, e_end, der.OCTET_STRING, "extnValue")
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
    start, stop = _expect(data, 0, total, der.SEQUENCE, "OCSPRequest")
    if stop != total:
        raise MalformedOcspRequest("trailing data after OCSPRequest")
    tbs_start, tbs_end = _expect(data, start, stop, der.SEQUENCE, "TBSRequest")
    if tbs_end != stop:
        # optionalSignature [0]: accepted, not required, not checked.
        _expect(data, tbs_end, stop, 0xA0, "optionalSignature")
        if read_tlv(data, tbs_end)[2] != stop:
            raise MalformedOcspRequest("trailing data after optionalSignature")
    pos = _skip_tbs_header(data, tbs_start, tbs_end)
    list_start, list_end = _expect(data, pos, tbs_end, der.SEQUENCE, "requestList")
    cert_ids = _parse_request_list(data, list_start, list_end)
    nonce = None
    if list_end != tbs_end:
        x_start, x_end = _expect(data, list_end, tbs_end, 0xA2, "requestExtensions")
        if x_end != tbs_end:
            raise MalformedOcspRequest("trailing data in TBSRequest")
        s_start, s_end = _expect(data, x_start, x_end, der.SEQUENCE, "Extensions")
        if s_end != x_end:
            raise MalformedOcspRequest("trailing data in requestExtensions")
        nonce = _find_nonce(data, s_start, s_end)
    return OcspRequest(tuple(cert_ids), nonce)


def _skip_tbs_header(data: bytes, pos: int, tbs_end: int) -> int:
    """Past the optional version (only v1 exists) and requestorName (ignored)."""
    tag = data[pos] if pos < tbs_end else None
    if tag == 0xA0:  # version [0] EXPLICIT INTEGER
        v_start, v_end = _expect(data, pos, tbs_end, 0xA0, "version")
        i_start, i_end = _expect(data, v_start, v_end, der.INTEGER, "version")
        if data[i_start:i_end] != b"\x00" or i_end != v_end:
            raise MalformedOcspRequest("unsupported OCSP request version")
        pos = v_end
        tag = data[pos] if pos < tbs_end else None
    if tag == 0xA1:  # requestorName: allowed, ignored
        pos = _expect(data, pos, tbs_end, 0xA1, "requestorName")[1]
    return pos


def _parse_request_list(data: bytes, start: int, end: int) -> list[CertId]:
    cert_ids: list[CertId] = []
    p = start
    while p < end:
        r_start, r_end = _expect(data, p, end, der.SEQUENCE, "Request")
        cert_id, after = _parse_cert_id(data, r_start, r_end)
        if after != r_end:  # singleRequestExtensions [0]: allowed, ignored
            e_start, e_end = _expect(data, after, r_end, 0xA0, "singleRequestExtensions")
            if e_end != r_end:
                raise MalformedOcspRequest("trailing data in Request")
            _expect(data, e_start, e_end, der.SEQUENCE, "Extensions")
        cert_ids.append(cert_id)
        p = r_end
    if not cert_ids:
        raise MalformedOcspRequest("requestList is empty")
    return cert_ids


def key_hash_input(cert: x509.Certificate) -> bytes:
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
        key = key_hash_input(issuer)
        self.by_hash = {h: (h.digest(name), h.digest(key)) for h in CertIdHash}

    def matches(self, cert_id: CertId) -> bool:
        if cert_id.hash is None:
            return False
        name_hash, key_hash = self.by_hash[cert_id.hash]
        return cert_id.issuer_name_hash == name_hash and cert_id.issuer_key_hash == key_hash
