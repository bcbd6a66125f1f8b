"""In a certificate's commit: what pays for it (its licence charge, a scheduled
renewal's hold given back and charged anew, its coupons redeemed), and what it
replaces (the renewed or reissued certificate is marked superseded: no reminders)."""

from __future__ import annotations

import datetime as dt

from core.base.clock import to_epoch
from core.issuance.prepare import Prepared
from core.issuance.scheduling import settle_issued
from core.licenses import book
from core.store import CertRecord, WriteTxn


def pay(
    txn: WriteTxn,
    p: Prepared,
    record: CertRecord,
    *,
    licensing: book.Settings | None,
    actor: str,
    now: dt.datetime,
) -> CertRecord:
    decision = p.decision
    held = p.held
    at = to_epoch(now)
    if held is not None and licensing is not None:
        # Its hold is given back and it is charged anew, in this one commit.
        book.release_hold(txn, held, now=at, actor=actor)
    if licensing is not None and p.plan is not None:
        record = book.charge_issue(
            txn,
            record,
            plan=p.plan,
            previous=decision.previous,
            allowed_kinds=decision.profile.license_kinds,
            settings=licensing,
            actor=actor,
            renewal=held.id if held is not None else "",
        )
    if held is not None:
        settle_issued(txn, held, record.serial, now=at, actor=actor)
    if decision.previous is not None:
        txn.supersede(decision.previous.serial, by=record.serial)
    return record
