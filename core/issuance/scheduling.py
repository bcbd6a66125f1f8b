"""Renewals scheduled for later (a profile's `renewal_issue_window`): accepted now,
their licence charge held (core/licenses/book.py `hold_renewal`), issued by the leader
once the window opens, through the engine like any request (its checks run again then,
the CSR's key checks too), or cancelled or failed, the hold given back.

Each is a ScheduledRenewal in the store (core/store/renewals.py); its events go to the
account's webhook: `renewal.scheduled`, then `certificate.issued` (the new serial), or
`renewal.cancelled` / `renewal.failed`.
"""

from __future__ import annotations

import functools
import logging
import secrets
from collections.abc import Sequence

import msgspec

from core.base.clock import Clock, epoch_us, from_epoch, to_epoch
from core.base.errors import Conflict, HankoError, NotFound
from core.issuance import events
from core.issuance.messages import IssueRequest, ScheduledRenewalView
from core.issuance.prepare import ToSchedule
from core.licenses import book
from core.store import Done, Failed, GroupCommitWriter, IdempotencyRecord, ReadTxn, WriteTxn
from core.store.renewals import ScheduledRenewal

log = logging.getLogger("hanko.renewals")
_JSON = msgspec.json.Encoder()
_REQUEST = msgspec.json.Decoder(IssueRequest)


def view(rec: ScheduledRenewal) -> ScheduledRenewalView:
    return ScheduledRenewalView(
        id=rec.id,
        status=rec.status,
        renewal_of=rec.renewal_of.hex(),
        issue_at=from_epoch(rec.issue_at),
        organization=rec.organization,
        license=rec.license or None,
        reserved=rec.reserved,
        serial=rec.serial.hex() if rec.serial else None,
        error=rec.error or None,
    )


def request_of(rec: ScheduledRenewal) -> IssueRequest:
    """The request as it was asked, without the coupon it named (held since: the
    renewal pays with its hold)."""
    return msgspec.structs.replace(_REQUEST.decode(rec.request), coupon=None, dealer=None)


class Scheduling:
    def __init__(
        self, *, writer: GroupCommitWriter, clock: Clock, licensing: book.Settings | None
    ) -> None:
        self._writer = writer
        self._clock = clock
        self._licensing = licensing

    async def schedule(
        self,
        items: Sequence[tuple[int, ToSchedule]],
        *,
        actor: str,
        accounts: frozenset[str] | None,
    ) -> list[tuple[int, ScheduledRenewalView | HankoError]]:
        """Schedule each renewal in one writer op, each in its own nested transaction."""
        now = to_epoch(self._clock.now())

        def one(txn: WriteTxn, item: ToSchedule) -> ScheduledRenewal:
            d = item.decision
            assert d.previous is not None  # noqa: S101 - a renewal names what it renews
            assert d.issue_at is not None  # noqa: S101 - and is scheduled
            rec = ScheduledRenewal(
                id="rnw_" + secrets.token_hex(8),
                account=d.org.account,
                organization=d.org.id,
                renewal_of=d.previous.serial,
                request=_JSON.encode(item.request),
                actor=actor,
                created_at=now,
                issue_at=to_epoch(d.issue_at),
                accounts=sorted(accounts) if accounts is not None else None,
            )
            if item.plan is not None and self._licensing is not None:
                rec = book.hold_renewal(
                    txn,
                    rec,
                    item.plan,
                    not_before=to_epoch(d.not_before),
                    not_after=to_epoch(d.not_after),
                    now=now,
                    actor=actor,
                )
            txn.schedule_renewal(rec, at_us=epoch_us(now))
            if item.ids is not None:
                txn.put_idempotency(
                    item.ids.key,
                    IdempotencyRecord(body_sha256=item.ids.body, serials=[], scheduled=rec.id),
                )
            events.renewal(txn, "renewal.scheduled", rec, at=now)
            return rec

        def group(txn: WriteTxn) -> list[Done[ScheduledRenewal] | Failed]:
            return [txn.attempt(functools.partial(one, item=it)) for _, it in items]

        try:
            outcomes = await self._writer.submit(group)
        except HankoError as exc:
            return [(i, exc) for i, _ in items]
        out: list[tuple[int, ScheduledRenewalView | HankoError]] = []
        for (i, _), outcome in zip(items, outcomes, strict=True):
            if isinstance(outcome, Failed):
                if not isinstance(outcome.error, HankoError):
                    raise outcome.error  # a bug: let it surface
                out.append((i, outcome.error))
            else:
                out.append((i, view(outcome.value)))
        return out

    async def settle(
        self,
        rec: ScheduledRenewal,
        status: str,
        *,
        actor: str,
        error: str = "",
        accounts: frozenset[str] | None = None,
    ) -> ScheduledRenewal:
        """Cancel or fail a scheduled renewal: off the schedule, its hold given back."""
        now = to_epoch(self._clock.now())

        def op(txn: WriteTxn) -> ScheduledRenewal:
            current = txn.get_renewal(rec.id)
            if current is None or (accounts is not None and current.account not in accounts):
                raise NotFound(f"no scheduled renewal {rec.id}")
            if current.status != "scheduled":
                raise Conflict(
                    f"renewal {rec.id} is {current.status}, no longer scheduled",
                    code="renewal_not_scheduled",
                )
            if self._licensing is not None:
                book.release_hold(txn, current, now=now, actor=actor)
            done = msgspec.structs.replace(current, status=status, error=error, settled_at=now)
            txn.settle_renewal(done, at_us=epoch_us(now), actor=actor)
            events.renewal(txn, f"renewal.{status}", done, at=now)
            return done

        return await self._writer.submit(op)


def settle_issued(
    txn: WriteTxn, held: ScheduledRenewal, serial: bytes, *, now: int, actor: str
) -> None:
    """In the commit of the certificate a scheduled renewal became."""
    done = msgspec.structs.replace(held, status="issued", serial=serial, settled_at=now)
    txn.settle_renewal(done, at_us=epoch_us(now), actor=actor)


def find(read: ReadTxn, renewal_id: str, accounts: frozenset[str] | None) -> ScheduledRenewal:
    rec = read.get_renewal(renewal_id)
    if rec is None or (accounts is not None and rec.account not in accounts):
        raise NotFound(f"no scheduled renewal {renewal_id}")
    return rec
