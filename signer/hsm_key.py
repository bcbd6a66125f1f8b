"""Private keys that plug into cryptography's builders but sign somewhere else.

cryptography calls `sign()` synchronously, once per object, so this is for the places
where one signature at a time is fine (CA bootstrap, tests). Bulk signing builds the
to-be-signed bytes with a throwaway key and signs them in batches (signer/splice.py).
The private half never leaves the HSM: everything but `sign` refuses.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn, Self

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric import padding as asym_padding
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from core.base.errors import SignerError
from signer.algorithms import SignAlgorithm

SignFn = Callable[[SignAlgorithm, bytes], bytes]


def _refuse(what: str) -> NoReturn:
    raise SignerError(f"the private key stays in the HSM: {what} is not available")


def _hash_suffix(algorithm: Any) -> str:
    if isinstance(algorithm, Prehashed):
        _refuse("signing a pre-hashed digest")
    if isinstance(algorithm, hashes.SHA256):
        return "SHA256"
    if isinstance(algorithm, hashes.SHA384):
        return "SHA384"
    raise SignerError(f"hanko signs with SHA-256 or SHA-384 only, not {algorithm.name}")


class _StaysInHsm:
    """What both key types share: the private half cannot be exported, and a copy of
    a handle to an HSM key is the same handle."""

    def private_bytes(
        self,
        encoding: serialization.Encoding,
        format: serialization.PrivateFormat,
        encryption_algorithm: serialization.KeySerializationEncryption,
    ) -> bytes:
        _refuse("export")

    def __copy__(self) -> Self:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> Self:
        return self


class HsmEcPrivateKey(_StaysInHsm, ec.EllipticCurvePrivateKey):
    def __init__(self, public: ec.EllipticCurvePublicKey, sign: SignFn) -> None:
        self._public = public
        self._sign = sign

    @property
    def curve(self) -> ec.EllipticCurve:
        return self._public.curve

    @property
    def key_size(self) -> int:
        return self._public.key_size

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._public

    def sign(self, data: Any, signature_algorithm: ec.EllipticCurveSignatureAlgorithm) -> bytes:
        if not isinstance(signature_algorithm, ec.ECDSA):
            raise SignerError("EC keys sign with ECDSA only")
        alg = SignAlgorithm[f"ECDSA_{_hash_suffix(signature_algorithm.algorithm)}"]
        return self._sign(alg, bytes(data))

    def exchange(self, algorithm: ec.ECDH, peer_public_key: ec.EllipticCurvePublicKey) -> bytes:
        _refuse("ECDH")

    def private_numbers(self) -> ec.EllipticCurvePrivateNumbers:
        _refuse("private numbers")


class HsmRsaPrivateKey(_StaysInHsm, rsa.RSAPrivateKey):
    def __init__(self, public: rsa.RSAPublicKey, sign: SignFn) -> None:
        self._public = public
        self._sign = sign

    @property
    def key_size(self) -> int:
        return self._public.key_size

    def public_key(self) -> rsa.RSAPublicKey:
        return self._public

    def sign(self, data: Any, padding: asym_padding.AsymmetricPadding, algorithm: Any) -> bytes:
        suffix = _hash_suffix(algorithm)
        if isinstance(padding, asym_padding.PKCS1v15):
            alg = SignAlgorithm[f"RSA_PKCS1_{suffix}"]
        elif isinstance(padding, asym_padding.PSS):
            alg = SignAlgorithm[f"RSA_PSS_{suffix}"]
        else:
            raise SignerError(f"unsupported RSA padding {padding.name}")
        return self._sign(alg, bytes(data))

    def decrypt(self, ciphertext: bytes, padding: asym_padding.AsymmetricPadding) -> bytes:
        _refuse("decryption")

    def private_numbers(self) -> rsa.RSAPrivateNumbers:
        _refuse("private numbers")


def hsm_private_key(public_der: bytes, sign: SignFn) -> HsmEcPrivateKey | HsmRsaPrivateKey:
    """A cryptography private key for the HSM key whose public half is `public_der`."""
    public = serialization.load_der_public_key(public_der)
    if isinstance(public, ec.EllipticCurvePublicKey):
        return HsmEcPrivateKey(public, sign)
    if isinstance(public, rsa.RSAPublicKey):
        return HsmRsaPrivateKey(public, sign)
    raise SignerError(f"unsupported public key type {type(public).__name__}")
