"""What a certificate's key is, read from its DER: the type hanko names it by
(ecdsa-p256, rsa-2048, ...) and the SHA-256 of its SubjectPublicKeyInfo (what the
blocked-keys list and a key-compromise search go by)."""

from __future__ import annotations

import hashlib

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa


def key_facts(der: bytes) -> tuple[str, bytes]:
    """(key type as hanko names it, SHA-256 of the SubjectPublicKeyInfo) of a
    certificate or precertificate; ("", b"") for DER that is not one."""
    try:
        key = x509.load_der_x509_certificate(der).public_key()
    except ValueError:
        return ("", b"")
    if isinstance(key, rsa.RSAPublicKey):
        name = f"rsa-{key.key_size}"
    elif isinstance(key, ec.EllipticCurvePublicKey):
        name = {"secp256r1": "ecdsa-p256", "secp384r1": "ecdsa-p384"}.get(
            key.curve.name, key.curve.name
        )
    else:
        name = type(key).__name__.lower()
    spki = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return name, hashlib.sha256(spki).digest()
