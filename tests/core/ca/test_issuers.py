"""Issuer selection (core/ca/issuers.py): pure, over real certificates' key types."""

from __future__ import annotations

import random

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from core.ca.issuer import CaUrls, IssuerInfo
from core.ca.issuers import IssuerSet, ecdsa_key
from signer.algorithms import KeyType

_SPKI = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
EC_SPKI = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(*_SPKI)
RSA_SPKI = (
    rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key().public_bytes(*_SPKI)
)
URLS = CaUrls.from_base("http://pki.example.com")


def info(name: str, key_type: KeyType, profiles: set[str], **extra: object) -> IssuerInfo:
    return IssuerInfo(
        None,  # type: ignore[arg-type]  # selection never reads the certificate
        key_type,
        name.encode(),
        URLS,
        True,
        name=name,
        profiles=frozenset(profiles),
        **extra,  # type: ignore[arg-type]
    )


def test_key_kind_of_spki() -> None:
    assert ecdsa_key(EC_SPKI)
    assert not ecdsa_key(RSA_SPKI)


def test_same_key_kind_first_then_any_active() -> None:
    e1 = info("e1", KeyType.ECDSA_P256, {"ov", "ev"})
    e2 = info("e2", KeyType.ECDSA_P256, {"ov"})
    r1 = info("r1", KeyType.RSA_2048, {"ov"})
    issuers = IssuerSet([e1, e2, r1], rng=random.Random(7))
    seen = {issuers.pick("ov", EC_SPKI, 0).name for _ in range(50)}  # type: ignore[union-attr]
    assert seen == {"e1", "e2"}  # at random among both ECDSA issuers, never the RSA one
    assert issuers.pick("ov", RSA_SPKI, 0) is r1
    # No RSA issuer for EV: an RSA key still gets a certificate, from an ECDSA issuer.
    assert issuers.pick("ev", RSA_SPKI, 0) is e1
    assert issuers.pick("dv", EC_SPKI, 0) is None


def test_inactive_retired_and_dates_of_use() -> None:
    idle = info("idle", KeyType.ECDSA_P256, set())
    old = info("old", KeyType.ECDSA_P256, {"ov"}, retired=True)
    later = info("later", KeyType.ECDSA_P256, {"ov"}, not_before=100)
    ended = info("ended", KeyType.ECDSA_P256, {"ov"}, not_after=100)
    issuers = IssuerSet([idle, old, later, ended])
    assert issuers.pick("ov", EC_SPKI, 99) is ended
    assert issuers.pick("ov", EC_SPKI, 100) is later
    assert issuers.profiles(50) == frozenset({"ov"})
    assert IssuerSet([idle, old]).pick("ov", EC_SPKI, 0) is None
