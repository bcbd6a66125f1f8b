"""Renewals scheduled for later: a renewal accepted before its profile's issue window
opens (`renewal_issue_window`) waits here, its licence charge reserved, until the
leader issues it, or it is cancelled or fails (the reservation given back).

`renewals`: id -> ScheduledRenewal; `renewals_due`: issue_at (8) id -> b"" while it is
scheduled; `renewals_of`: the renewed certificate's serial -> id while it is scheduled
(one scheduled renewal per certificate)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import msgspec

from core.base.errors import Conflict
from core.store.audit import AuditWrites
from core.store.txn import Txn

RenewalStatus = Literal["scheduled", "issued", "cancelled", "failed"]


class ScheduledRenewal(msgspec.Struct, array_like=True, frozen=True, kw_only=True):
    id: str
    account: str  # the organization's account
    organization: str
    renewal_of: bytes
    request: bytes  # the IssueRequest as JSON, issued as it was asked
    actor: str  # who asked: the audit log's actor when the leader issues it
    created_at: int
    issue_at: int
    # The caller's accounts (None: every account), kept to issue within them.
    accounts: list[str] | None = None
    status: RenewalStatus = "scheduled"
    license: str = ""  # the reservation: licence, amount (cert-days or units) and lots
    reserved: int = 0
    lots: list[int] = msgspec.field(default_factory=list)
    coupons: list[bytes] = msgspec.field(default_factory=list)
    serial: bytes = b""  # the certificate, once issued
    error: str = ""  # why it failed
    settled_at: int = 0


_DECODE = msgspec.msgpack.Decoder(ScheduledRenewal).decode
_ENCODE = msgspec.msgpack.Encoder().encode


def _due_key(rec: ScheduledRenewal) -> bytes:
    return max(rec.issue_at, 0).to_bytes(8, "big") + rec.id.encode()


class RenewalReads(Txn):
    def get_renewal(self, renewal_id: str) -> ScheduledRenewal | None:
        raw = self.txn.get(renewal_id.encode(), db=self.dbs[b"renewals"])
        return None if raw is None else _DECODE(raw)

    def scheduled_renewal_of(self, serial: bytes) -> ScheduledRenewal | None:
        rid = self.txn.get(serial, db=self.dbs[b"renewals_of"])
        return None if rid is None else self.get_renewal(bytes(rid).decode())

    def due_renewals(self, now: int, *, limit: int = 100) -> list[ScheduledRenewal]:
        """Scheduled renewals whose issue time has come, earliest first."""
        out: list[ScheduledRenewal] = []
        for key, _ in self.txn.cursor(db=self.dbs[b"renewals_due"]):
            if int.from_bytes(key[:8], "big") > now or len(out) >= limit:
                break
            rec = self.get_renewal(bytes(key[8:]).decode())
            if rec is not None and rec.status == "scheduled":
                out.append(rec)
        return out

    def iter_renewals(self, *, account: str | None = None) -> Iterator[ScheduledRenewal]:
        for _, value in self.txn.cursor(db=self.dbs[b"renewals"]):
            rec = _DECODE(value)
            if account is None or rec.account == account:
                yield rec


class RenewalWrites(RenewalReads, AuditWrites):
    def schedule_renewal(self, rec: ScheduledRenewal, *, at_us: int) -> None:
        if self.scheduled_renewal_of(rec.renewal_of) is not None:
            raise Conflict(
                f"a renewal of {rec.renewal_of.hex()} is scheduled already: cancel it first",
                code="renewal_already_scheduled",
            )
        self.txn.put(rec.id.encode(), _ENCODE(rec), db=self.dbs[b"renewals"])
        self.txn.put(_due_key(rec), b"", db=self.dbs[b"renewals_due"])
        self.txn.put(rec.renewal_of, rec.id.encode(), db=self.dbs[b"renewals_of"])
        self.audit(
            at_us=at_us,
            actor=rec.actor,
            action="renewal.schedule",
            subject=rec.id,
            detail={"renewal_of": rec.renewal_of.hex(), "issue_at": str(rec.issue_at)},
        )

    def settle_renewal(self, rec: ScheduledRenewal, *, at_us: int, actor: str) -> None:
        """A scheduled renewal that was issued, cancelled or failed: off the schedule."""
        self.txn.put(rec.id.encode(), _ENCODE(rec), db=self.dbs[b"renewals"])
        self.txn.delete(_due_key(rec), db=self.dbs[b"renewals_due"])
        if self.txn.get(rec.renewal_of, db=self.dbs[b"renewals_of"]) == rec.id.encode():
            self.txn.delete(rec.renewal_of, db=self.dbs[b"renewals_of"])
        detail: dict[str, str] = {"status": str(rec.status)}
        if rec.serial:
            detail["serial"] = rec.serial.hex()
        if rec.error:
            detail["error"] = rec.error[:200]
        self.audit(
            at_us=at_us, actor=actor, action=f"renewal.{rec.status}", subject=rec.id, detail=detail
        )
