"""What callers of the signer import: the interface, not the pool behind it.

The engine, the OCSP refresher and the CRL publisher sign through a BatchSigner: the
PKCS#11 worker pool in production (signer/pool.py), a software signer in tests and
benchmarks (signer/software.py).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Protocol

from core.base.errors import SignerError
from signer.algorithms import SignAlgorithm

SignItem = tuple[str, SignAlgorithm, bytes]  # (key label, algorithm, message)


class Priority(enum.IntEnum):
    INTERACTIVE = 0  # issuance a portal is waiting for
    REFRESH = 1  # OCSP re-signing before the refresh point
    BULK = 2  # rebuilds, benchmarks, back-fills


class BatchSigner(Protocol):
    async def sign_many(
        self,
        items: Sequence[SignItem],
        *,
        priority: Priority = ...,
        wait: bool = ...,
    ) -> list[bytes | SignerError]: ...

    async def sign_digest(
        self, label: str, alg: SignAlgorithm, digest: bytes, *, priority: Priority = ...
    ) -> bytes: ...
