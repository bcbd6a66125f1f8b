"""Which issuing CA signs a request: among the active issuers for its profile, those
of the subscriber key's kind where there is one (an ECDSA key from an ECDSA
intermediate), one at random (Boulder's pickIssuer). Pure: the clock and the random
source are the caller's."""

from __future__ import annotations

import random
from collections.abc import Sequence

from core.ca.issuer import IssuerInfo

# The DER of the ecPublicKey OID (1.2.840.10045.2.1) as it appears in an SPKI.
_EC_PUBLIC_KEY = b"\x06\x07\x2a\x86\x48\xce\x3d\x02\x01"


def ecdsa_key(spki: bytes) -> bool:
    """Whether a SubjectPublicKeyInfo holds an elliptic-curve key (its algorithm comes
    within its first bytes)."""
    return _EC_PUBLIC_KEY in spki[:32]


class IssuerSet:
    """Every configured issuer, active or not, by name and by key id."""

    def __init__(self, issuers: Sequence[IssuerInfo], *, rng: random.Random | None = None) -> None:
        if not issuers:
            raise ValueError("at least one issuer")
        self.all = tuple(issuers)
        self.by_key_id = {i.key_id: i for i in issuers}
        self.by_name = {i.name: i for i in issuers}
        self._rng = rng or random.Random()  # noqa: S311 - spreading load, not a secret

    def candidates(self, profile: str, spki: bytes, now: int) -> list[IssuerInfo]:
        active = [i for i in self.all if i.issues(profile, now)]
        ecdsa = ecdsa_key(spki)
        same_kind = [i for i in active if i.ecdsa == ecdsa]
        return same_kind or active

    def pick(self, profile: str, spki: bytes, now: int) -> IssuerInfo | None:
        found = self.candidates(profile, spki, now)
        if not found:
            return None
        return found[0] if len(found) == 1 else self._rng.choice(found)

    def profiles(self, now: int) -> frozenset[str]:
        """The profiles some issuer issues for now."""
        out: set[str] = set()
        for i in self.all:
            out.update(p for p in i.profiles if i.issues(p, now))
        return frozenset(out)
