"""A certificate's key type and SPKI hash from a walk of its DER, checked against
cryptography's parse of the same certificates."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from bench.search_load import self_signed
from core.store.key_facts import key_facts


@pytest.mark.parametrize(
    ("key", "name"),
    [
        (ec.generate_private_key(ec.SECP256R1()), "ecdsa-p256"),
        (ec.generate_private_key(ec.SECP384R1()), "ecdsa-p384"),
        (ec.generate_private_key(ec.SECP521R1()), "secp521r1"),
        (rsa.generate_private_key(public_exponent=65537, key_size=2048), "rsa-2048"),
        (rsa.generate_private_key(public_exponent=65537, key_size=3072), "rsa-3072"),
        (ed25519.Ed25519PrivateKey.generate(), "ed25519"),
    ],
)
def test_key_type_and_spki_hash(key: Any, name: str) -> None:
    der = self_signed(key)
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert key_facts(der) == (name, hashlib.sha256(spki).digest())


@pytest.mark.parametrize("der", [b"", b"der", b"\x30\x03\x02\x01\x01", b"\x30\x82\xff\xff"])
def test_not_a_certificate(der: bytes) -> None:
    assert key_facts(der) == ("", b"")
