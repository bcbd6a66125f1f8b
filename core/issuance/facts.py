"""Reading what the issuance policy needs from one store snapshot."""

from __future__ import annotations

import hashlib

from core.base.errors import NotFound, PolicyError
from core.issuance import policy
from core.issuance.intake import CheckedCsr
from core.issuance.messages import IssueRequest
from core.issuance.pem import serial_from_hex
from core.store import CertRecord, ReadTxn


def check_org_scope(read: ReadTxn, org_id: str, accounts: frozenset[str]) -> None:
    """An organization outside the caller's accounts is one it cannot know of: the
    same answer as for one that does not exist."""
    org = read.get_org(org_id)
    if org is None or org.account not in accounts:
        raise NotFound(f"no organization {org_id!r}", code="organization_unknown")


def facts_for(read: ReadTxn, req: IssueRequest, csr: CheckedCsr | PolicyError) -> policy.Facts:
    """Everything the policy needs from the store, read in the request's snapshot."""
    org = read.get_org(req.organization)
    validated_at = org.validated_at if org is not None else 0
    if org is not None and org.parent:  # a sub-organization shares its primary's
        parent = read.get_org(org.parent)
        validated_at = parent.validated_at if parent is not None else 0
    digest = hashlib.sha256(csr.spki).digest() if isinstance(csr, CheckedCsr) else b""
    blocked = bool(digest) and read.blocked_key(digest) is not None

    def previous(serial_hex: str | None) -> CertRecord | None:
        return None if serial_hex is None else read.get_cert(serial_from_hex(serial_hex))

    return policy.Facts(
        org=org,
        org_validated_at=validated_at,
        spki_sha256=digest,
        key_blocked=blocked,
        domains=tuple(read.iter_domains(org.id)) if org is not None else (),
        renewal_of=previous(req.renewal_of),
        reissue_of=previous(req.reissue_of),
    )
