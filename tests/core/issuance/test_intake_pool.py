"""The intake process pool gives exactly the answers of inline intake."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import trio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from core.base.errors import PolicyError
from core.issuance.intake import CheckedCsr, check_each
from core.issuance.intake_pool import INLINE_BELOW, IntakePool

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
        assert pool.statistics().batches == 1  # large enough to use the processes
        inline = check_each(items)
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
        stats = pool.statistics()
        assert (stats.batches, stats.inline, stats.started) == (0, 1, False)
    finally:
        pool.close()


_OWNER = """
import sys, trio
from tests.core.issuance.test_intake_pool import ALL, csr
from cryptography.hazmat.primitives.asymmetric import ec
from core.issuance.intake_pool import INLINE_BELOW, IntakePool
pool = IntakePool(processes=2)
items = [(csr(f"h{i}.example.co.jp", ec.generate_private_key(ec.SECP256R1())), ALL)
         for i in range(INLINE_BELOW)]
trio.run(pool.check, items)
print(" ".join(str(p) for p in pool._pool()._processes), flush=True)
sys.stdin.read()  # until killed
"""


def test_workers_go_when_their_owner_is_killed() -> None:
    """`hanko serve` killed with SIGKILL must not leave intake processes behind."""
    owner = subprocess.Popen(
        [sys.executable, "-c", _OWNER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parents[3],
    )
    try:
        assert owner.stdout is not None
        workers = [int(p) for p in owner.stdout.readline().split()]
        assert len(workers) == 2
        assert all(_alive(p) for p in workers)
    finally:
        owner.kill()
        owner.wait(timeout=30)
    deadline = time.monotonic() + 15
    while any(_alive(p) for p in workers):
        assert time.monotonic() < deadline, f"intake workers outlived their owner: {workers}"
        time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"
