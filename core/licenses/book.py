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
from core.licenses import charging, coupons, policy
from core.licenses.messages import LicenseAddIn, LicenseIn
from core.licenses.plans import Plan, account_of
from core.licenses.policy import Move, Outcome
from core.store import (
    AccountRecord,
    CertRecord,
    LedgerEntry,
    LicenseRecord,
    OrgRecord,
    ReadTxn,
    WriteTxn,
)
from core.store.renewals import ScheduledRenewal


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


def precheck_issue(
    read: ReadTxn,
    *,
    plan: Plan,
    allowed_kinds: Sequence[str],
    profile: str,
    names: Sequence[str],
    previous: CertRecord | None,
    serial: str,
    not_before: int,
    not_after: int,
    settings: Settings,
    held: ScheduledRenewal | None = None,
) -> None:
    """Whether the planned licence can pay, asked on a snapshot before anything is
    signed. `charge_issue` asks again in the commit, where concurrent issuances are
    serialized. `held`: the scheduled renewal being issued, whose hold is given back
    in the same commit."""
    lic = read.get_license(plan.license)
    if lic is None:
        raise PolicyError("license_unknown", f"no license {plan.license!r}")
    lic = policy.lapse(lic, not_before).license
    if held is not None and held.license == lic.id:
        lic = _unhold(lic, held, not_before).license
    issue_outcome(
        read,
        lic,
        plan=plan,
        allowed_kinds=allowed_kinds,
        profile=profile,
        names=names,
        not_before=not_before,
        not_after=not_after,
        serial=serial,
        previous=previous,
        settings=settings,
    )


def issue_outcome(
    read: ReadTxn,
    lic: LicenseRecord,
    *,
    plan: Plan,
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
    outcome = charging.issue(
        lic,
        operation=plan.operation,
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
        units=plan.units,
        added=plan.added,
        lots=plan.lots,
    )
    if plan.covered:  # paid by a multi-year coupon: the ledger says which certificate
        cover = Move(
            "transfer", 0, not_before, serial=serial, item="certificate", note="multi-year coupon"
        )
        outcome = Outcome(outcome.license, [*outcome.moves, cover], charged=0)
    return outcome


def charge_issue(
    txn: WriteTxn,
    record: CertRecord,
    *,
    plan: Plan,
    previous: CertRecord | None,
    allowed_kinds: Sequence[str],
    settings: Settings,
    actor: str,
    renewal: str = "",
) -> CertRecord:
    """Take what `record` costs from its license, in the certificate's own transaction;
    returns the record with its charge. Called after a reissued certificate was
    revoked, so the replaced one's slot and charge move to the new one. `renewal`: the
    scheduled renewal this issues (its held coupons are its own)."""
    now = record.not_before
    lic = current(txn, plan.license, now, actor=actor)
    if lic.account != record.account_id and not _redeemer(txn, plan, record.account_id):
        raise PolicyError("license_unknown", f"no license {lic.id!r} for this account")
    outcome = issue_outcome(
        txn,
        lic,
        plan=plan,
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
    coupons.redeem(
        txn,
        list(plan.coupons),
        serial=record.serial,
        now=now,
        offset=settings.offset,
        renewal=renewal,
    )
    carried = previous.coupon if previous is not None and plan.operation == "reissue" else b""
    charged = msgspec.structs.replace(
        record,
        license=lic.id,
        charged=outcome.charged,
        lot=outcome.lot,
        coupon=(plan.coupons[0] if plan.coupons else plan.covered) or carried,
        names_charged=plan.units + plan.added,
    )
    if lic.kind == "monthly":
        txn.live_add(lic.id, record.not_after, record.serial, slots=plan.units + plan.added)
    if previous is not None and plan.operation == "reissue":
        if lic.kind == "monthly":
            txn.live_remove(lic.id, previous.not_after, previous.serial)
        _mark_released(txn, previous.serial)
    elif previous is not None and plan.operation == "renewal":
        # The renewal carries the old certificate's remaining time: a pooled charge for
        # it comes back, as for any certificate replaced early.
        release(txn, previous, now=now, actor=actor)
    return charged


# -- scheduled renewals --------------------------------------------------------------


def hold_renewal(
    txn: WriteTxn,
    rec: ScheduledRenewal,
    plan: Plan,
    *,
    not_before: int,
    not_after: int,
    now: int,
    actor: str,
) -> ScheduledRenewal:
    """Hold what a scheduled renewal will take (after `precheck_issue` said it can):
    its cert-days or units, and its coupons. Returns the record with its hold."""
    if plan.covered:
        return msgspec.structs.replace(rec, license=plan.license)
    lic = current(txn, plan.license, now, actor=actor)
    outcome = charging.reserve(
        lic,
        units=plan.units,
        not_before=not_before,
        not_after=not_after,
        now=now,
        renewal=rec.id,
        lots=plan.lots,
    )
    apply(txn, outcome, actor=actor)
    coupons.hold(txn, list(plan.coupons), renewal=rec.id)
    return msgspec.structs.replace(
        rec,
        license=lic.id,
        reserved=-sum(m.amount for m in outcome.moves),
        lots=[m.lot for m in outcome.moves if m.lot],
        coupons=list(plan.coupons),
    )


def _unhold(lic: LicenseRecord, rec: ScheduledRenewal, now: int) -> Outcome:
    return charging.unreserve(lic, amount=rec.reserved, lots=rec.lots, now=now, renewal=rec.id)


def release_hold(txn: WriteTxn, rec: ScheduledRenewal, *, now: int, actor: str) -> None:
    """Give back a scheduled renewal's hold: it is being issued (and charged anew in the
    same commit), or was cancelled or failed."""
    if rec.license and (rec.reserved or rec.lots):
        lic = current(txn, rec.license, now, actor=actor)
        apply(txn, _unhold(lic, rec, now), actor=actor)
    coupons.let_go(txn, rec.coupons, renewal=rec.id)


def _redeemer(read: ReadTxn, plan: Plan, account: str) -> bool:
    """Whether the coupons of `plan` were sold for `account` to redeem."""
    found = [read.get_coupon(cid) for cid in plan.coupons or (plan.covered,) if cid]
    return bool(found) and all(c is not None and c.redeemable_by(account) for c in found)


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
        apply(txn, charging.release(lic, stored, now=now), actor=actor)
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
    if existing is not None and existing.level != org.level:
        raise Conflict(
            f"organization {org.id} is validated for {existing.level.upper()}: change its"
            " level with `hanko org upgrade` (the EV fields checked again) or"
            " `hanko org downgrade`, never by writing it anew",
            code="org_level_change",
        )
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
    apply(txn, charging.take_item(lic, now=now, item=item, subject=subject), actor=actor)


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


def sell_coupons(
    txn: WriteTxn, lic: LicenseRecord, terms: LicenseIn | LicenseAddIn, *, years: int | None
) -> list[str]:
    """The numbers of the coupons of `lic`'s newest lot (just bought or added)."""
    for name in terms.redeemers:
        account_of(txn, name)  # each must exist
    return coupons.sell(
        txn,
        lic,
        lic.lots[-1],
        dealer=terms.dealer or "",
        accounts=list(terms.redeemers),
        years=years or 1,
        common_name=terms.common_name or "",
    )


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
