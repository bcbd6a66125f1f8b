"""The intake process pool gives exactly the answers of inline intake."""

from __future__ import annotations

import trio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from core.errors import PolicyError
from core.issuance.intake import CheckedCsr
from core.issuance.intake_pool import INLINE_BELOW, IntakePool, check_inline

ALL = ("rsa", "ecdsa-p256", "ecdsa-p384")


def csr(name: str, key: object) -> str:
    return (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .sign(key, hashes.SHA256())  # type: ignore[arg-type]
        .public_bytes(serialization.Encoding.PEM)
        .decode()
    )


def test_pool_matches_inline() -> None:
    items: list[tuple[str, tuple[str, ...]]] = []
    for i in range(3 * INLINE_BELOW):
        key = ec.generate_private_key(ec.SECP256R1())
        items.append((csr(f"h{i}.example.co.jp", key), ALL))
    items[5] = ("not a csr", ALL)
    items[9] = (items[9][0], ("rsa",))  # an EC key where only RSA is allowed
    items[20] = (csr("small.example.co.jp", rsa.generate_private_key(65537, 1024)), ALL)  # noqa: S505

    pool = IntakePool(processes=2)
    try:
        pooled = trio.run(pool.check, items)
        assert pool.batches == 1  # large enough to use the processes
        inline = check_inline(items)
    finally:
        pool.close()
    assert len(pooled) == len(inline) == len(items)
    for a, b in zip(pooled, inline, strict=True):
        if isinstance(b, PolicyError):
            assert isinstance(a, PolicyError)
            assert (a.code, a.message) == (b.code, b.message)
        else:
            assert isinstance(a, CheckedCsr)
            assert a == b
    codes = {i: r.code for i, r in enumerate(pooled) if isinstance(r, PolicyError)}
    assert codes == {5: "csr_malformed", 9: "key_type_not_allowed", 20: "key_too_small"}


def test_small_requests_stay_inline() -> None:
    pool = IntakePool(processes=1)
    try:
        key = ec.generate_private_key(ec.SECP256R1())
        [result] = trio.run(pool.check, [(csr("a.example.co.jp", key), ALL)])
        assert isinstance(result, CheckedCsr)
        assert pool.batches == 0
    finally:
        pool.close()
