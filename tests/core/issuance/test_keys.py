"""Key rules, including real weak keys built for the test (ROCA form, close primes)."""

import secrets

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from core.base.errors import PolicyError
from core.issuance.keys import (
    _ROCA_PRIMES,
    check_subscriber_key,
    fermat_factor,
    has_roca_fingerprint,
    spki_sha256,
)

ALL = ("rsa", "ecdsa-p256", "ecdsa-p384")


def is_probable_prime(n: int) -> bool:
    if n < 2 or n % 2 == 0:
        return n == 2
    d, r = n - 1, 0
    while d % 2 == 0:
        d //= 2
        r += 1
    for _ in range(20):
        x = pow(secrets.randbelow(n - 3) + 2, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(r - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


def next_prime(n: int) -> int:
    n |= 1
    while not is_probable_prime(n):
        n += 2
    return n


def public(n: int, e: int = 65537) -> rsa.RSAPublicKey:
    return rsa.RSAPublicNumbers(e, n).public_key()


def roca_prime(bits: int) -> int:
    """A prime of the RSALib form p = k*M + (65537^a mod M)."""
    m = 1
    for p in _ROCA_PRIMES:
        m *= p
    while True:
        a = secrets.randbelow(1 << 20)
        k = secrets.randbits(bits - m.bit_length() + 2)
        candidate = k * m + pow(65537, a, m)
        if candidate >> (bits - 2) == 3 and is_probable_prime(candidate):
            return candidate


def test_good_keys_pass() -> None:
    for key in (
        rsa.generate_private_key(65537, 2048).public_key(),
        ec.generate_private_key(ec.SECP256R1()).public_key(),
        ec.generate_private_key(ec.SECP384R1()).public_key(),
    ):
        assert check_subscriber_key(key, allowed=ALL) is key


def refusal(key: object, allowed: tuple[str, ...] = ALL, blocked: tuple[bytes, ...] = ()) -> str:
    with pytest.raises(PolicyError) as info:
        check_subscriber_key(key, allowed=allowed, blocked=blocked)  # type: ignore[arg-type]
    return info.value.code


def test_small_rsa() -> None:
    small = rsa.generate_private_key(65537, 1024).public_key()  # noqa: S505 - on purpose
    assert refusal(small) == "key_too_small"


def test_bad_exponents() -> None:
    n = rsa.generate_private_key(65537, 2048).public_key().public_numbers().n
    assert refusal(public(n, 3)) == "key_exponent_invalid"
    assert refusal(public(n, 17)) == "key_exponent_invalid"


def test_roca_key_is_refused() -> None:
    n = roca_prime(1024) * roca_prime(1024)
    assert n.bit_length() == 2048
    assert has_roca_fingerprint(n)
    assert refusal(public(n)) == "key_weak_roca"
    # and an ordinary key does not carry the fingerprint
    ordinary = rsa.generate_private_key(65537, 2048).public_key().public_numbers().n
    assert not has_roca_fingerprint(ordinary)


def test_close_primes_are_refused() -> None:
    p = next_prime((3 << 1022) + secrets.randbits(900))
    q = next_prime(p + 2 + secrets.randbits(400))
    assert fermat_factor(p * q) in (p, q)
    assert refusal(public(p * q)) == "key_weak_fermat"


def test_small_factor() -> None:
    m = ((1 << 2047) // 3 + secrets.randbits(2000)) | 1
    n = 3 * m
    assert n.bit_length() == 2048
    assert refusal(public(n)) == "key_weak"


def test_curves_and_types() -> None:
    assert refusal(ec.generate_private_key(ec.SECP521R1()).public_key()) == "key_type_not_allowed"
    assert refusal(ed25519.Ed25519PrivateKey.generate().public_key()) == "key_type_not_allowed"
    p256 = ec.generate_private_key(ec.SECP256R1()).public_key()
    assert refusal(p256, allowed=("rsa",)) == "key_type_not_allowed"
    rsa3072 = rsa.generate_private_key(65537, 3072).public_key()
    assert refusal(rsa3072, allowed=("rsa-2048",)) == "key_type_not_allowed"
    assert check_subscriber_key(rsa3072, allowed=("rsa-3072",)) is rsa3072


def test_blocked_key() -> None:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    assert refusal(key, blocked=(spki_sha256(key),)) == "key_blocked"
