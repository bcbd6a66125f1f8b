"""What a certificate's key is, read from its DER: the type hanko names it by
(ecdsa-p256, rsa-2048, ...) and the SHA-256 of its SubjectPublicKeyInfo (what the
blocked-keys list and a key-compromise search go by).

Written with every certificate record on PostgreSQL, so the common keys are read by a
walk of the DER (a few microseconds) rather than by parsing the certificate."""

from __future__ import annotations

import hashlib

from core.base.der import read_tlv

# AlgorithmIdentifier contents (OID, parameters) of the keys hanko issues for.
_EC_P256 = bytes.fromhex("06072a8648ce3d020106082a8648ce3d030107")
_EC_P384 = bytes.fromhex("06072a8648ce3d020106052b81040022")
_RSA = bytes.fromhex("06092a864886f70d0101010500")


def key_facts(der: bytes) -> tuple[str, bytes]:
    """(key type as hanko names it, SHA-256 of the SubjectPublicKeyInfo) of a
    certificate or precertificate; ("", b"") for DER that is not one."""
    try:
        spki = _spki(der)
    except ValueError:
        return ("", b"")
    return _key_type(spki), hashlib.sha256(spki).digest()


def _spki(der: bytes) -> bytes:
    _, start, _ = read_tlv(der)  # Certificate
    _, pos, _ = read_tlv(der, start)  # tbsCertificate: its first field
    tag, _, end = read_tlv(der, pos)
    skip = 5 if tag == 0xA0 else 4  # [0] version, serial, signature, issuer, validity, subject
    for _ in range(skip):
        _, _, end = read_tlv(der, end)
    tag, _, spki_end = read_tlv(der, end)
    if tag != 0x30:
        raise ValueError("no SubjectPublicKeyInfo")
    return der[end:spki_end]


def _key_type(spki: bytes) -> str:
    _, start, _ = read_tlv(spki)
    _, alg_start, alg_end = read_tlv(spki, start)
    algorithm = spki[alg_start:alg_end]
    if algorithm == _EC_P256:
        return "ecdsa-p256"
    if algorithm == _EC_P384:
        return "ecdsa-p384"
    if algorithm == _RSA:
        _, key_start, _ = read_tlv(spki, alg_end)  # BIT STRING: unused-bits octet, then
        _, seq, _ = read_tlv(spki, key_start + 1)  # RSAPublicKey SEQUENCE
        _, n_start, n_end = read_tlv(spki, seq)  # modulus INTEGER
        modulus = spki[n_start:n_end].lstrip(b"\0")
        return f"rsa-{int.from_bytes(modulus, 'big').bit_length()}"
    return _named(spki)


def _named(spki: bytes) -> str:
    """Any other key, as cryptography names it."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    try:
        key = load_der_public_key(spki)
    except (ValueError, TypeError):
        return "unknown"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return key.curve.name
    return type(key).__name__.lower().removeprefix("_").removesuffix("publickey")
