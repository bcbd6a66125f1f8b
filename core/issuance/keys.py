"""Subscriber public keys: allowed types, and the weak keys BR 6.1.1.3 says to refuse.

Pure. Checks RSA modulus size and exponent, the ROCA fingerprint (Infineon RSALib keys,
CVE-2017-15361), moduli whose primes are close enough for Fermat's method (BR: at least
100 rounds), small factors, and a set of blocked SPKI hashes (keys revoked for
keyCompromise, plus an operator's list such as the Debian weak keys).
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from functools import lru_cache
from math import isqrt

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes

from core.base.errors import PolicyError

SubscriberKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey

# Primes whose residues fingerprint RSALib moduli (Nemec et al., "The Return of
# Coppersmith's Attack", CCS 2017): such a modulus is a power of 65537 modulo each.
_ROCA_PRIMES = (
    3,
    5,
    7,
    11,
    13,
    17,
    19,
    23,
    29,
    31,
    37,
    41,
    43,
    47,
    53,
    59,
    61,
    67,
    71,
    73,
    79,
    83,
    89,
    97,
    101,
    103,
    107,
    109,
    113,
    127,
    131,
    137,
    139,
    149,
    151,
    157,
    163,
    167,
)
_SMALL_PRIMES = tuple(p for p in range(3, 1000, 2) if all(p % d for d in range(3, isqrt(p) + 1, 2)))
FERMAT_ROUNDS = 100


@lru_cache(maxsize=1)
def _roca_subgroups() -> tuple[tuple[int, frozenset[int]], ...]:
    groups = []
    for p in _ROCA_PRIMES:
        seen, x = set(), 1
        while x not in seen:
            seen.add(x)
            x = x * 65537 % p
        groups.append((p, frozenset(seen)))
    return tuple(groups)


def has_roca_fingerprint(n: int) -> bool:
    return all(n % p in group for p, group in _roca_subgroups())


_SQ64 = frozenset(i * i % 64 for i in range(64))
_SQ63 = frozenset(i * i % 63 for i in range(63))
_SQ65 = frozenset(i * i % 65 for i in range(65))


def _maybe_square(x: int) -> bool:
    """Cheap filters before isqrt: about 99% of non-squares fail one of them."""
    return (x & 63) in _SQ64 and x % 63 in _SQ63 and x % 65 in _SQ65


def fermat_factor(n: int, rounds: int = FERMAT_ROUNDS) -> int | None:
    """A factor of n if its primes are close enough for `rounds` steps of Fermat."""
    a = isqrt(n)
    if a * a < n:
        a += 1
    b2 = a * a - n
    for _ in range(rounds):
        if _maybe_square(b2):
            b = isqrt(b2)
            if b * b == b2:
                return a - b
        b2 += 2 * a + 1  # (a + 1)^2 - n, without squaring a 2048-bit number
        a += 1
    return None


def spki_sha256(key: CertificatePublicKeyTypes) -> bytes:
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).digest()


def key_type_name(key: SubscriberKey) -> str:
    if isinstance(key, rsa.RSAPublicKey):
        return f"rsa-{key.key_size}"
    return {"secp256r1": "ecdsa-p256", "secp384r1": "ecdsa-p384"}.get(
        key.curve.name, key.curve.name
    )


def check_subscriber_key(
    key: CertificatePublicKeyTypes, *, allowed: Collection[str], blocked: Collection[bytes] = ()
) -> SubscriberKey:
    """The key if a certificate may carry it; otherwise a PolicyError saying why."""
    if isinstance(key, rsa.RSAPublicKey):
        numbers = key.public_numbers()
        n, e = numbers.n, numbers.e
        if key.key_size < 2048:
            raise PolicyError(
                "key_too_small", f"RSA keys must be at least 2048 bits, got {key.key_size}"
            )
        if key.key_size % 8:
            raise PolicyError(
                "key_size_invalid", f"RSA modulus size {key.key_size} is not a multiple of 8"
            )
        if e % 2 == 0 or not 65537 <= e < 2**256:
            raise PolicyError(
                "key_exponent_invalid",
                f"RSA public exponent {e} is not an odd number from 65537 up",
            )
        if any(n % p == 0 for p in _SMALL_PRIMES) or n % 2 == 0:
            raise PolicyError("key_weak", "the RSA modulus has a small factor")
        if has_roca_fingerprint(n):
            raise PolicyError(
                "key_weak_roca",
                "the RSA key was made by a vulnerable generator (ROCA, CVE-2017-15361)",
            )
        if fermat_factor(n) is not None:
            raise PolicyError(
                "key_weak_fermat", "the RSA modulus can be factored: its primes are too close"
            )
    elif isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in ("secp256r1", "secp384r1"):
            raise PolicyError(
                "key_type_not_allowed", f"EC keys must be on P-256 or P-384, not {key.curve.name}"
            )
    else:
        raise PolicyError(
            "key_type_not_allowed", f"{type(key).__name__} keys are not accepted; use RSA or ECDSA"
        )
    kind = key_type_name(key)
    family_ok = kind in allowed or (kind.startswith("rsa-") and "rsa" in allowed)
    if not family_ok:
        raise PolicyError(
            "key_type_not_allowed",
            f"this profile does not accept {kind} keys (allowed: {', '.join(sorted(allowed))})",
        )
    if blocked and spki_sha256(key) in blocked:
        raise PolicyError(
            "key_blocked",
            "this key is blocked (it was reported compromised or is a known weak key)",
        )
    return key
