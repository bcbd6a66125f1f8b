"""One-off signing with a CA key in the HSM, for the commands that sign one object at
a time (`hanko ca renew-responder`, `hanko ca root-crl`): a session from the
configuration, and a key that is checked to be the one a certificate names, so that
a wrong label never certifies, nor signs with, some other key."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from core.base.errors import HankoError
from core.config import Config, read_secret
from signer.algorithms import SignAlgorithm
from signer.hsm_key import HsmEcPrivateKey, HsmRsaPrivateKey, hsm_private_key
from signer.token import TokenSession

_SPKI = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


class KeyMismatch(HankoError):
    code = "hsm_key_mismatch"


@contextmanager
def hsm_session(cfg: Config) -> Iterator[TokenSession]:
    h = cfg.hsm
    session = TokenSession(
        h.module,
        h.token_label,
        read_secret(cfg, h.pin),
        softhsm_conf=str(cfg.path(h.softhsm_conf)) if h.softhsm_conf else None,
    )
    try:
        yield session
    finally:
        session.close()


def check_key(
    session: TokenSession, label: str, cert: x509.Certificate, label_field: str, cert_field: str
) -> None:
    """Refuse unless the HSM key `label` is the key of `cert` (the fields name the
    settings in the message)."""
    held = serialization.load_der_public_key(session.public_key_der(label))
    if held.public_bytes(*_SPKI) != cert.public_key().public_bytes(*_SPKI):
        raise KeyMismatch(f"{label_field}: the HSM key {label!r} is not the key of {cert_field}")


def signing_key(session: TokenSession, label: str) -> HsmEcPrivateKey | HsmRsaPrivateKey:
    def sign(alg: SignAlgorithm, data: bytes) -> bytes:
        return session.sign(label, alg, data)

    return hsm_private_key(session.public_key_der(label), sign)
