"""CSR intake reduced to what issuance needs, in a form that crosses process boundaries.

Pure. `check_csr` parses the CSR, verifies its proof of possession and checks its key
against the profile's allowed types; the answer is plain data (SPKI DER, names, CN), so
the same function runs inline or in the intake process pool (core/issuance/intake_pool.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization

from core.base.errors import PolicyError
from core.issuance.csr import parse_csr
from core.issuance.keys import check_subscriber_key


@dataclass(frozen=True)
class CheckedCsr:
    spki: bytes
    names: tuple[str, ...]  # as requested, CN first
    common_name: str | None


def check_csr(text: str, allowed: tuple[str, ...]) -> CheckedCsr:
    info = parse_csr(text)
    key = check_subscriber_key(info.public_key, allowed=allowed)
    spki = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return CheckedCsr(spki=spki, names=info.requested_names, common_name=info.common_name)


def check_many(items: list[tuple[str, tuple[str, ...]]]) -> list[CheckedCsr | tuple[str, str]]:
    """For the pool: refusals come back as (code, message), which pickle cleanly."""
    out: list[CheckedCsr | tuple[str, str]] = []
    for text, allowed in items:
        try:
            out.append(check_csr(text, allowed))
        except PolicyError as exc:
            out.append((exc.code, exc.message))
    return out
