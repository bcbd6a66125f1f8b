"""A signer with the pool's interface and in-memory software keys. For unit tests only:
hanko's own keys always live in an HSM, and no configuration can select this."""

from __future__ import annotations

from collections.abc import Sequence

import trio
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

from core.base.errors import SignerError
from signer.algorithms import SignAlgorithm
from signer.api import Priority

SoftwareKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def _hash(alg: SignAlgorithm) -> hashes.HashAlgorithm:
    return hashes.SHA384() if alg.hash_name == "sha384" else hashes.SHA256()


def software_sign(
    key: SoftwareKey, alg: SignAlgorithm, data: bytes, *, prehashed: bool = False
) -> bytes:
    chosen: hashes.HashAlgorithm | utils.Prehashed = (
        utils.Prehashed(_hash(alg)) if prehashed else _hash(alg)
    )
    if isinstance(key, ec.EllipticCurvePrivateKey):
        if not alg.is_ecdsa:
            raise SignerError(f"an EC key cannot sign {alg.slug}")
        return key.sign(data, ec.ECDSA(chosen))
    if alg.is_ecdsa:
        raise SignerError(f"an RSA key cannot sign {alg.slug}")
    pad: padding.AsymmetricPadding = (
        padding.PSS(padding.MGF1(_hash(alg)), _hash(alg).digest_size)
        if alg.is_pss
        else padding.PKCS1v15()
    )
    return key.sign(data, pad, chosen)


class SoftwareSigner:
    def __init__(self, keys: dict[str, SoftwareKey]) -> None:
        self._keys = keys
        self.signatures = 0

    def _sign(self, label: str, alg: SignAlgorithm, data: bytes) -> bytes:
        key = self._keys.get(label)
        if key is None:
            raise SignerError(f"no key labelled {label!r}")
        self.signatures += 1
        return software_sign(key, alg, data)

    async def sign(
        self,
        label: str,
        alg: SignAlgorithm,
        data: bytes,
        *,
        priority: Priority = Priority.INTERACTIVE,
        wait: bool = True,
    ) -> bytes:
        await trio.lowlevel.checkpoint()
        return self._sign(label, alg, data)

    async def sign_digest(
        self,
        label: str,
        alg: SignAlgorithm,
        digest: bytes,
        *,
        priority: Priority = Priority.BULK,
    ) -> bytes:
        await trio.lowlevel.checkpoint()
        key = self._keys.get(label)
        if key is None:
            raise SignerError(f"no key labelled {label!r}")
        self.signatures += 1
        return software_sign(key, alg, digest, prehashed=True)

    async def sign_many(
        self,
        items: Sequence[tuple[str, SignAlgorithm, bytes]],
        *,
        priority: Priority = Priority.BULK,
        wait: bool = True,
    ) -> list[bytes | SignerError]:
        await trio.lowlevel.checkpoint()
        out: list[bytes | SignerError] = []
        for label, alg, data in items:
            try:
                out.append(self._sign(label, alg, data))
            except SignerError as exc:
                out.append(exc)
        return out
