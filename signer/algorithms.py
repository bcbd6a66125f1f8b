"""Signature algorithms hanko signs with, and what each needs from a key.

Pure data: the PKCS#11 mechanism mapping lives with the worker, the cryptography
mapping with the software signer; both key off these names.
"""

from __future__ import annotations

import enum
import hashlib

from cryptography.hazmat.primitives import hashes


class SignAlgorithm(enum.IntEnum):
    RSA_PKCS1_SHA256 = 1
    RSA_PKCS1_SHA384 = 2
    RSA_PSS_SHA256 = 3
    RSA_PSS_SHA384 = 4
    ECDSA_SHA256 = 5
    ECDSA_SHA384 = 6

    @property
    def is_ecdsa(self) -> bool:
        return self in (SignAlgorithm.ECDSA_SHA256, SignAlgorithm.ECDSA_SHA384)

    @property
    def is_pss(self) -> bool:
        return self in (SignAlgorithm.RSA_PSS_SHA256, SignAlgorithm.RSA_PSS_SHA384)

    @property
    def hash_name(self) -> str:
        return "sha384" if self.name.endswith("SHA384") else "sha256"

    @property
    def digest_size(self) -> int:
        return hashlib.new(self.hash_name).digest_size

    @property
    def slug(self) -> str:
        return self.name.lower().replace("_", "-")

    @classmethod
    def from_slug(cls, slug: str) -> SignAlgorithm:
        for alg in cls:
            if alg.slug == slug:
                return alg
        raise ValueError(f"unknown signature algorithm {slug!r}")


# Set on the algorithm value of a signing request whose data is already the digest. Large
# documents (a CRL of a million entries is ~45 MB) are hashed where they are built, so
# only 32 or 48 bytes cross the pipe to the worker and no second copy is ever made.
PREHASHED = 0x100

# DER DigestInfo prefixes (RFC 8017 9.2 note 1) for RSA PKCS#1 v1.5 over a digest.
DIGEST_INFO_PREFIX = {
    "sha256": bytes.fromhex("3031300d060960864801650304020105000420"),
    "sha384": bytes.fromhex("3041300d060960864801650304020205000430"),
}


class KeyType(enum.Enum):
    """Key types the CA's own keys may have (`hanko init --key-type`)."""

    ECDSA_P256 = "ecdsa-p256"
    ECDSA_P384 = "ecdsa-p384"
    RSA_2048 = "rsa-2048"
    RSA_3072 = "rsa-3072"

    @property
    def is_ec(self) -> bool:
        return self.value.startswith("ecdsa")

    @property
    def default_algorithm(self) -> SignAlgorithm:
        """The BR pairing: P-256 with SHA-256, P-384 with SHA-384, RSA with SHA-256."""
        if self is KeyType.ECDSA_P384:
            return SignAlgorithm.ECDSA_SHA384
        if self is KeyType.ECDSA_P256:
            return SignAlgorithm.ECDSA_SHA256
        return SignAlgorithm.RSA_PKCS1_SHA256

    @property
    def curve_oid(self) -> str:
        return {"ecdsa-p256": "1.2.840.10045.3.1.7", "ecdsa-p384": "1.3.132.0.34"}[self.value]

    @property
    def rsa_bits(self) -> int:
        return int(self.value.split("-")[1])

    def accepts(self, alg: SignAlgorithm) -> bool:
        if self is KeyType.ECDSA_P256:
            return alg is SignAlgorithm.ECDSA_SHA256
        if self is KeyType.ECDSA_P384:
            return alg is SignAlgorithm.ECDSA_SHA384
        return not alg.is_ecdsa


def hash_for(key_type: KeyType) -> hashes.SHA256 | hashes.SHA384:
    """The digest an issuer key of this type signs certificates, CRLs and OCSP with."""
    return hashes.SHA384() if key_type is KeyType.ECDSA_P384 else hashes.SHA256()
