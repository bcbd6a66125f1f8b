"""An organization's validation level changes only on purpose: an upgrade to EV checks
the EV fields again and dates a new validation; a downgrade to OV is refused while the
organization has a live EV certificate (its subject would no longer be what was
validated). Writing the organization anew with another level is refused
(core/licenses/book.py `attach_org`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import msgspec
from cryptography import x509

from core.base.clock import epoch_us
from core.base.errors import Conflict, NotFound, PolicyError
from core.issuance.org import check_org
from core.store import CertStatus, OrgRecord, ReadTxn, WriteTxn

EV_POLICY = x509.ObjectIdentifier("2.23.140.1.1")


class LevelChange(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    level: Literal["ov", "ev"]
    jurisdiction_country: str | None = None
    business_category: str | None = None
    registration_number: str | None = None


def live_ev(read: ReadTxn, org: OrgRecord, now: int) -> list[str]:
    """Serials of the organization's EV certificates neither revoked nor expired."""
    found = []
    for serial in read.iter_account_certs(org.account, expiring_after=now):
        rec = read.get_cert(serial)
        if rec is None or rec.organization != org.id or rec.status is not CertStatus.GOOD:
            continue
        try:
            policies = x509.load_der_x509_certificate(rec.der).extensions.get_extension_for_class(
                x509.CertificatePolicies
            )
        except (ValueError, x509.ExtensionNotFound):
            continue
        if any(p.policy_identifier == EV_POLICY for p in policies.value):
            found.append(serial.hex())
    return found


def changed(org: OrgRecord, change: LevelChange, *, now: int, live: list[str]) -> OrgRecord:
    """The organization at its new level, or the refusal. Pure."""
    if org.parent:
        raise PolicyError("sub_organization_ev", "a sub-organization shares OV validation only")
    if change.level == org.level:
        raise Conflict(
            f"organization {org.id} is {org.level.upper()} already", code="org_level_same"
        )
    if change.level == "ev":
        # The EV fields are checked as for a new EV organization, and this is a new
        # validation of the organization's identity: dated now.
        return check_org(
            msgspec.structs.replace(
                org,
                level="ev",
                validated_at=now,
                jurisdiction_country=change.jurisdiction_country,
                business_category=change.business_category,
                registration_number=change.registration_number,
            )
        )
    if live:
        shown = ", ".join(live[:5]) + (" ..." if len(live) > 5 else "")
        raise PolicyError(
            "org_has_live_ev_certificates",
            f"organization {org.id} has {len(live)} live EV certificates ({shown}):"
            " revoke them or let them expire before it becomes OV",
        )
    return msgspec.structs.replace(
        org,
        level="ov",
        jurisdiction_country=None,
        business_category=None,
        registration_number=None,
    )


def level_op(
    org_id: str, change: LevelChange, *, now: int, actor: str
) -> Callable[[WriteTxn], OrgRecord]:
    def op(txn: WriteTxn) -> OrgRecord:
        org = txn.get_org(org_id)
        if org is None:
            raise NotFound(f"no organization {org_id!r}")
        live = live_ev(txn, org, now) if change.level == "ov" else []
        new = changed(org, change, now=now, live=live)
        txn.put_org(new, at_us=epoch_us(now), actor=actor)
        txn.audit(
            at_us=epoch_us(now),
            actor=actor,
            action=f"org.{'upgrade' if new.level == 'ev' else 'downgrade'}",
            subject=org_id,
            detail={"from": org.level, "to": new.level},
        )
        return new

    return op
