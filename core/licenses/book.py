"""Licenses at the store's edge: policy outcomes applied inside a write transaction.

Every function here runs in the caller's WriteTxn, so a consumption commits with its
certificate (or a purchase with its license) or not at all. The policy (what may move)
is core/licenses/policy.py; this module reads the current state, asks the policy, and
writes the license, its ledger movements and the indexes in one go.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import msgspec

from core.base.clock import epoch_us
from core.base.errors import Conflict, NotFound, PolicyError
from core.licenses import balances, policy
from core.licenses.policy import CHARGING_KINDS, Operation, Outcome
from core.store import (
    AccountRecord,
    CertRecord,
    LedgerEntry,
    LicenseRecord,
    OrgRecord,
    ReadTxn,
    WriteTxn,
)


@dataclass(frozen=True)
class Settings:
    """What the license rules need from configuration."""

    offset: int = 540  # minutes east of UTC of the contracts' calendar
    expiring_soon: int = 30 * 86400


def apply(txn: WriteTxn, outcome: Outcome, *, actor: str) -> LicenseRecord:
    """Store the license as it became and append its movements to the ledger."""
    lic = outcome.license
    txn.put_license(lic)
    for m in outcome.moves:
        txn.append_ledger(
            LedgerEntry(
                seq=0,
                at=m.at,
                account=lic.account,
                license=lic.id,
                movement=m.movement,
                amount=m.amount,
                actor=actor,
                lot=m.lot,
                serial=m.serial,
                item=m.item,
                term_end=m.term_end,
                quantity=m.quantity,
                note=m.note,
            )
        )
    return lic


def current(txn: WriteTxn, license_id: str, now: int, *, actor: str) -> LicenseRecord:
    """The license with every lapse up to `now` recorded."""
    lic = txn.get_license(license_id)
    if lic is None:
        raise PolicyError("license_unknown", f"no license {license_id!r}")
    outcome = policy.lapse(lic, now)
    return apply(txn, outcome, actor="clock") if outcome.moves else lic


def account_of(read: ReadTxn, account_id: str) -> AccountRecord:
    acct = read.get_account(account_id)
    if acct is None:
        raise NotFound(f"no account {account_id!r}")
    return acct


def license_for(read: ReadTxn, org: OrgRecord, requested: str | None) -> LicenseRecord:
    """The license an issuance for `org` draws on: the one named, else its account's
    default. Raises with a precise code when there is none to use."""
    if not org.account:
        raise PolicyError(
            "account_required", f"organization {org.id} belongs to no account: nothing can pay"
        )
    if requested is None:
        acct = account_of(read, org.account)
        if not acct.default_license:
            raise PolicyError(
                "license_required",
                f"account {org.account} has no default license: name one in the request",
            )
        requested = acct.default_license
    lic = read.get_license(requested)
    if lic is None or lic.account != org.account:
        # Another account's licence is answered exactly as one that does not exist:
        # licence ids are not for other tenants to probe.
        raise PolicyError("license_unknown", f"no license {requested!r} for this account")
    return lic


def precheck_issue(
    read: ReadTxn,
    *,
    requested: str | None,
    org: OrgRecord,
    profile: str,
    allowed_kinds: Sequence[str],
    names: Sequence[str],
    operation: Operation,
    previous: CertRecord | None,
    serial: str,
    not_before: int,
    not_after: int,
    settings: Settings,
) -> tuple[Operation, str]:
    """Which license pays for an issuance, and whether it can, asked on a snapshot before
    anything is signed (a refusal costs no signature). `charge_issue` asks again in the
    commit, where concurrent issuances are serialized. Returns the operation as licensing
    sees it (a certificate from before licensing is reissued as a new one: it pays)."""
    if operation == "reissue" and previous is not None and previous.license:
        lic = read.get_license(previous.license)
        if lic is None:
            raise PolicyError("license_unknown", f"no license {previous.license!r}")
        if requested is not None and requested != lic.id:
            raise PolicyError(
                "license_mismatch",
                f"a reissue stays on its original's license {lic.id}, not {requested}",
            )
    else:
        operation = "new" if operation == "reissue" else operation
        lic = license_for(read, org, requested)
    issue_outcome(
        read,
        policy.lapse(lic, not_before).license,
        operation=operation,
        allowed_kinds=allowed_kinds,
        profile=profile,
        names=names,
        not_before=not_before,
        not_after=not_after,
        serial=serial,
        previous=previous,
        settings=settings,
    )
    return operation, lic.id


def issue_outcome(
    read: ReadTxn,
    lic: LicenseRecord,
    *,
    operation: Operation,
    allowed_kinds: Sequence[str],
    profile: str,
    names: Sequence[str],
    not_before: int,
    not_after: int,
    serial: str,
    previous: CertRecord | None,
    settings: Settings,
) -> Outcome:
    """What issuing at `not_before` takes from `lic` (lapsed to then), as seen in `read`:
    the engine asks on a snapshot before signing, `charge_issue` again in the commit."""
    live = read.count_live(lic.id, not_before) if lic.kind == "monthly" else 0
    return policy.issue(
        lic,
        operation=operation,
        allowed_kinds=allowed_kinds,
        profile=profile,
        names=names,
        not_before=not_before,
        not_after=not_after,
        now=not_before,
        offset=settings.offset,
        serial=serial,
        live=live,
        previous=previous,
    )


def charge_issue(
    txn: WriteTxn,
    record: CertRecord,
    *,
    operation: Operation,
    previous: CertRecord | None,
    allowed_kinds: Sequence[str],
    settings: Settings,
    actor: str,
) -> CertRecord:
    """Take what `record` costs from its license, in the certificate's own transaction;
    returns the record with its charge. Called after a reissued certificate was
    revoked, so the replaced one's slot and charge move to the new one."""
    now = record.not_before
    lic = current(txn, record.license, now, actor=actor)
    if lic.account != record.account_id:
        raise PolicyError("license_unknown", f"no license {lic.id!r} for this account")
    outcome = issue_outcome(
        txn,
        lic,
        operation=operation,
        allowed_kinds=allowed_kinds,
        profile=record.profile,
        names=record.names,
        not_before=record.not_before,
        not_after=record.not_after,
        serial=record.serial.hex(),
        previous=previous,
        settings=settings,
    )
    apply(txn, outcome, actor=actor)
    charged = msgspec.structs.replace(record, charged=outcome.charged, lot=outcome.lot)
    if lic.kind == "monthly":
        txn.live_add(lic.id, record.not_after, record.serial)
    if previous is not None and operation == "reissue":
        if lic.kind == "monthly":
            txn.live_remove(lic.id, previous.not_after, previous.serial)
        _mark_released(txn, previous.serial)
    elif previous is not None and operation == "renewal":
        # The renewal carries the old certificate's remaining time: a pooled charge for
        # it comes back, as for any certificate replaced early.
        release(txn, previous, now=now, actor=actor)
    return charged


def release(txn: WriteTxn, cert: CertRecord, *, now: int, actor: str) -> None:
    """A certificate revoked (or replaced) before its end gives back what its kind
    returns; once only."""
    stored = txn.get_cert(cert.serial) or cert
    if not stored.license or stored.released:
        return
    lic = current(txn, stored.license, now, actor=actor)
    if lic.kind == "monthly":
        txn.live_remove(lic.id, stored.not_after, stored.serial)
    if lic.kind == "pooled" and now < lic.end:  # after the term, days are worth nothing
        apply(txn, policy.release(lic, stored, now=now), actor=actor)
    _mark_released(txn, stored.serial)


def _mark_released(txn: WriteTxn, serial: bytes) -> None:
    cert = txn.get_cert(serial)
    if cert is not None and not cert.released:
        txn.put_cert(msgspec.structs.replace(cert, released=True))


# -- accounts ---------------------------------------------------------------------------


def create_account(txn: WriteTxn, acct: AccountRecord, *, at_us: int, actor: str) -> None:
    if txn.get_account(acct.id) is not None:
        raise Conflict(f"account {acct.id!r} already exists", code="account_exists")
    txn.put_account(acct)
    txn.audit(at_us=at_us, actor=actor, action="account.create", subject=acct.id)


def attach_org(txn: WriteTxn, org: OrgRecord, *, now: int, actor: str) -> OrgRecord:
    """Put an organization under its account. Beyond the account's included
    organizations, a new one takes a unit of its extras license. A sub-organization
    shares its parent's validation: it must be OV and under the same account."""
    acct = account_of(txn, org.account)
    if org.parent:
        parent = txn.get_org(org.parent)
        if parent is None or parent.account != org.account:
            raise PolicyError(
                "parent_not_in_account",
                f"organization {org.parent!r} is not a primary organization of {org.account}",
            )
        if parent.parent:
            raise PolicyError("parent_is_sub_organization", "sub-organizations do not nest")
        if org.level != "ov":
            raise PolicyError(
                "sub_organization_ev", "a sub-organization shares OV validation only, not EV"
            )
    existing = txn.get_org(org.id)
    if existing is not None and existing.account and existing.account != org.account:
        raise Conflict(f"organization id {org.id} is taken", code="org_taken")
    if org.id not in acct.orgs:
        if len(acct.orgs) >= acct.included_orgs:
            _take_extra(txn, acct, "organization", org.id, now=now, actor=actor)
        acct = msgspec.structs.replace(acct, orgs=[*acct.orgs, org.id])
        txn.put_account(acct)
    return org


def add_admin(txn: WriteTxn, account_id: str, admin: str, *, now: int, actor: str) -> AccountRecord:
    acct = account_of(txn, account_id)
    if admin in acct.admins:
        return acct
    if len(acct.admins) >= acct.included_admins:
        _take_extra(txn, acct, "administrator", admin, now=now, actor=actor)
    acct = msgspec.structs.replace(acct, admins=[*acct.admins, admin])
    return save_account(txn, acct, "account.admin", {"admin": admin}, now=now, actor=actor)


def remove_admin(
    txn: WriteTxn, account_id: str, admin: str, *, now: int, actor: str
) -> AccountRecord:
    """Take an administrator off the account. A unit paid for them is not given back
    (units are spent, as for a revoked certificate's), and adding them again later counts
    against the included administrators like anyone new."""
    acct = account_of(txn, account_id)
    if admin not in acct.admins:
        raise NotFound(f"account {account_id!r} has no administrator {admin!r}")
    acct = msgspec.structs.replace(acct, admins=[a for a in acct.admins if a != admin])
    return save_account(txn, acct, "account.admin_removed", {"admin": admin}, now=now, actor=actor)


def save_account(
    txn: WriteTxn,
    acct: AccountRecord,
    action: str,
    detail: dict[str, str],
    *,
    now: int,
    actor: str,
) -> AccountRecord:
    """Store a changed account with its audit record, in the same transaction."""
    txn.put_account(acct)
    txn.audit(at_us=epoch_us(now), actor=actor, action=action, subject=acct.id, detail=detail)
    return acct


def _take_extra(
    txn: WriteTxn, acct: AccountRecord, item: str, subject: str, *, now: int, actor: str
) -> None:
    if not acct.extras_license:
        raise PolicyError(
            "license_required",
            f"account {acct.id} has no license for extra {item}s"
            f" ({acct.included_orgs if item == 'organization' else acct.included_admins}"
            " included)",
        )
    lic = current(txn, acct.extras_license, now, actor=actor)
    apply(txn, policy.take_item(lic, now=now, item=item, subject=subject), actor=actor)


# -- operator actions on licenses -------------------------------------------------------


def buy(
    txn: WriteTxn,
    account_id: str,
    license_id: str,
    kind: str,
    *,
    quantity: int,
    years: int | None,
    months: int | None,
    now: int,
    settings: Settings,
    actor: str,
) -> LicenseRecord:
    acct = account_of(txn, account_id)
    if txn.get_license(license_id) is not None:
        raise Conflict(f"license {license_id!r} already exists", code="license_exists")
    outcome = policy.purchase(
        license_id,
        account_id,
        kind,
        quantity=quantity,
        now=now,
        offset=settings.offset,
        years=years,
        months=months,
    )
    lic = apply(txn, outcome, actor=actor)
    if not acct.default_license:
        txn.put_account(msgspec.structs.replace(acct, default_license=license_id))
    return lic


def owned(txn: WriteTxn, account_id: str, license_id: str, now: int, actor: str) -> LicenseRecord:
    lic = current(txn, license_id, now, actor=actor)
    if lic.account != account_id:
        raise NotFound(f"account {account_id} has no license {license_id!r}")
    return lic


def sweep_lapses(txn: WriteTxn, now: int) -> int:
    """Record every lapse due by `now` (views show them anyway; this writes them)."""
    n = 0
    for lic in list(txn.iter_licenses()):
        outcome = policy.lapse(lic, now)
        if outcome.moves:
            apply(txn, outcome, actor="clock")
            n += len(outcome.moves)
    return n


# -- the check ------------------------------------------------------------------------------


def check(read: ReadTxn) -> list[str]:
    """Recompute every license from its ledger and compare with the cached record; and
    prove that every consumed unit has its certificate and every paid certificate its
    consumption. Returns the problems found (none: the books balance)."""
    problems: list[str] = []
    kinds: dict[str, str] = {}
    for lic in read.iter_licenses():
        kinds[lic.id] = lic.kind
        derived = balances.derive(lic, read.iter_ledger(license=lic.id))
        problems += [f"license {lic.id}: {d}" for d in balances.differences(lic, derived)]
    paid: dict[str, str] = {}  # serial hex -> license, from consume/transfer entries
    for e in read.iter_ledger():
        if e.movement in ("consume", "transfer") and e.item in ("certificate", ""):
            if not e.serial:
                continue
            if e.serial in paid:
                problems.append(f"certificate {e.serial} was paid twice (ledger {e.seq})")
            paid[e.serial] = e.license
            cert = read.get_cert(bytes.fromhex(e.serial))
            if cert is None:
                problems.append(
                    f"ledger {e.seq}: {e.movement} for certificate {e.serial}, which does not exist"
                )
            elif cert.license != e.license:
                problems.append(
                    f"ledger {e.seq}: certificate {e.serial} is on license"
                    f" {cert.license!r}, not {e.license}"
                )
    for cert in _certs(read):
        charging = kinds.get(cert.license) in CHARGING_KINDS
        if cert.license and charging and cert.serial.hex() not in paid:
            problems.append(
                f"certificate {cert.serial.hex()} on license {cert.license}"
                " has no consumption in the ledger"
            )
    return problems


def _certs(read: ReadTxn) -> list[CertRecord]:
    out = []
    for acct in read.iter_accounts():
        for serial in read.iter_account_certs(acct.id):
            cert = read.get_cert(serial)
            if cert is not None:
                out.append(cert)
    return out
