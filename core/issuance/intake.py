"""CSR intake reduced to what issuance needs, in a form that crosses process boundaries.

Pure. `check_csr` parses the CSR, verifies its proof of possession and checks its key
against the profile's allowed types; the answer is plain data (SPKI DER, names, CN), so
the same function runs inline or in the intake process pool (core/issuance/intake_pool.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization

from core.base.errors import PolicyError
from core.issuance.csr import CsrRequest, parse_csr
from core.issuance.keys import check_subscriber_key

Item = tuple[str, tuple[str, ...]]  # (CSR text, the key types the profile allows)


@dataclass(frozen=True)
class CheckedCsr:
    spki: bytes  # SubjectPublicKeyInfo DER of a key the profile allows
    request: CsrRequest


def check_csr(text: str, allowed: tuple[str, ...]) -> CheckedCsr:
    public_key, request = parse_csr(text)
    key = check_subscriber_key(public_key, allowed=allowed)
    spki = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return CheckedCsr(spki=spki, request=request)


def check_each(items: list[Item]) -> list[CheckedCsr | PolicyError]:
    out: list[CheckedCsr | PolicyError] = []
    for text, allowed in items:
        try:
            out.append(check_csr(text, allowed))
        except PolicyError as exc:
            out.append(exc)
    return out


def check_portable(items: list[Item]) -> list[CheckedCsr | tuple[str, str]]:
    """`check_each` for the pool: refusals come back as (code, message), which pickle
    cleanly (PolicyError's own arguments do not round-trip)."""
    return [r if isinstance(r, CheckedCsr) else (r.code, r.message) for r in check_each(items)]
