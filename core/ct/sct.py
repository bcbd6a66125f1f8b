"""Signed Certificate Timestamps (RFC 6962), with no I/O: what a log's answer holds,
the structure its signature covers, checking that signature against the log's key,
and the SCT list extension of the final certificate.

cryptography parses SCT lists but neither builds SCTs nor verifies them, so both are
here, byte for byte from RFC 6962 section 3.2 (the signed structure) and 3.3 (the
list in the certificate).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from core.base.der import tlv
from core.base.errors import HankoError

SCT_LIST_OID = "1.3.6.1.4.1.11129.2.4.2"
V1 = 0
CERTIFICATE_TIMESTAMP = 0
X509_ENTRY = 0
PRECERT_ENTRY = 1
# TLS SignatureAndHashAlgorithm: hash sha256(4); signature rsa(1) or ecdsa(3).
SHA256 = 4
RSA = 1
ECDSA = 3


class SctError(HankoError):
    code = "sct_invalid"


class Sct(msgspec.Struct, frozen=True, kw_only=True):
    """One SCT as a log returns it (add-chain, add-pre-chain), decoded."""

    version: int
    log_id: bytes  # SHA-256 of the log's public key (SubjectPublicKeyInfo DER)
    timestamp: int  # milliseconds since the epoch
    extensions: bytes
    hash_algorithm: int
    signature_algorithm: int
    signature: bytes

    def serialized(self) -> bytes:
        """The SCT as it goes into the certificate's list (RFC 6962 3.2, 3.3)."""
        return b"".join(
            (
                bytes((self.version,)),
                self.log_id,
                struct.pack(">Q", self.timestamp),
                _vector(self.extensions, 2),
                bytes((self.hash_algorithm, self.signature_algorithm)),
                _vector(self.signature, 2),
            )
        )


class _Answer(msgspec.Struct, frozen=True):
    sct_version: int
    id: str
    timestamp: int
    extensions: str
    signature: str


_ANSWER = msgspec.json.Decoder(_Answer)


def _vector(data: bytes, width: int) -> bytes:
    if len(data) >= 1 << (8 * width):
        raise SctError(f"a TLS vector of {len(data)} bytes does not fit {width} length octets")
    return len(data).to_bytes(width, "big") + data


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise SctError(f"the log's {what} is not base64") from None


def parse_answer(body: bytes) -> Sct:
    """An add-chain or add-pre-chain answer (RFC 6962 4.1) as an Sct; SctError if it
    is not one."""
    try:
        a = _ANSWER.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise SctError(f"the log's answer is not an SCT: {exc}") from None
    log_id = _b64(a.id, "id")
    signed = _b64(a.signature, "signature")
    if a.sct_version != V1 or len(log_id) != 32 or len(signed) < 4:
        raise SctError("the log's SCT is not a version 1 SCT with a 32-octet log id")
    if not 0 <= a.timestamp < 1 << 64:
        raise SctError("the log's SCT timestamp is out of range")
    length = int.from_bytes(signed[2:4], "big")
    if len(signed) != 4 + length:
        raise SctError("the log's signature is not a TLS DigitallySigned")
    return Sct(
        version=a.sct_version,
        log_id=log_id,
        timestamp=a.timestamp,
        extensions=_b64(a.extensions, "extensions"),
        hash_algorithm=signed[0],
        signature_algorithm=signed[1],
        signature=signed[4:],
    )


def log_id(spki_der: bytes) -> bytes:
    return hashlib.sha256(spki_der).digest()


def issuer_key_hash(issuer_spki_der: bytes) -> bytes:
    return hashlib.sha256(issuer_spki_der).digest()


def signed_data(
    sct: Sct, *, tbs: bytes | None = None, issuer_key_hash: bytes = b"", leaf: bytes | None = None
) -> bytes:
    """What the log signed (RFC 6962 3.2): for a precertificate, the issuer's key hash
    and the precertificate's TBS without its poison (`tbs`); for a certificate, the
    certificate's DER (`leaf`)."""
    head = bytes((sct.version, CERTIFICATE_TIMESTAMP)) + struct.pack(">Q", sct.timestamp)
    if tbs is not None:
        if len(issuer_key_hash) != 32:
            raise SctError("a precertificate entry needs the issuer's 32-octet key hash")
        entry = struct.pack(">H", PRECERT_ENTRY) + issuer_key_hash + _vector(tbs, 3)
    elif leaf is not None:
        entry = struct.pack(">H", X509_ENTRY) + _vector(leaf, 3)
    else:
        raise SctError("signed_data needs a precertificate TBS or a certificate")
    return head + entry + _vector(sct.extensions, 2)


PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey


def load_key(spki_der: bytes) -> PublicKey:
    """A CT log's key (ECDSA or RSA) from its SubjectPublicKeyInfo DER."""
    try:
        key = serialization.load_der_public_key(spki_der)
    except ValueError:
        raise SctError("the log's key is not a DER SubjectPublicKeyInfo") from None
    if not isinstance(key, (ec.EllipticCurvePublicKey, rsa.RSAPublicKey)):
        raise SctError("a CT log's key is ECDSA or RSA")
    return key


def verify(sct: Sct, log_key_der: bytes, data: bytes, *, key: PublicKey | None = None) -> None:
    """SctError unless `sct` is the log's signature over `data` (signed_data()).
    `key`: the log's key already loaded from `log_key_der`."""
    if sct.log_id != log_id(log_key_der):
        raise SctError("the SCT names another log")
    if sct.hash_algorithm != SHA256:
        raise SctError("the SCT is not signed with SHA-256")
    key = key or load_key(log_key_der)
    try:
        if isinstance(key, ec.EllipticCurvePublicKey) and sct.signature_algorithm == ECDSA:
            key.verify(sct.signature, data, ec.ECDSA(hashes.SHA256()))
        elif isinstance(key, rsa.RSAPublicKey) and sct.signature_algorithm == RSA:
            key.verify(sct.signature, data, padding.PKCS1v15(), hashes.SHA256())
        else:
            raise SctError("the SCT's signature algorithm is not the log key's")
    except InvalidSignature:
        raise SctError("the SCT's signature does not verify with the log's key") from None


def list_extension_value(scts: list[Sct]) -> bytes:
    """The extnValue contents of the SCT list extension: an OCTET STRING holding the
    TLS-encoded SignedCertificateTimestampList (RFC 6962 3.3)."""
    if not scts:
        raise SctError("an SCT list holds at least one SCT")
    body = b"".join(_vector(s.serialized(), 2) for s in scts)
    return tlv(0x04, _vector(body, 2))
