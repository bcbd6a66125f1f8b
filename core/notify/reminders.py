"""Reminders pushed to webhooks: a certificate expiring (at each of `[notify]
expiry_days`), licence units lapsing unused, a licence term ending (within `[notify]
license_days`, 30). Each happens once: a mark in the store, set in the commit that queues
the event, so a restart or a second sweep never queues it again.

Found in a read snapshot (the sweep reads much and writes little), queued in one
write op that looks at each mark again."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import msgspec

from core.issuance.events import certificate
from core.licenses.desk import LicenseDesk
from core.store import CertStatus, ReadTxn, WriteTxn

DAY = 86400


class Reminder(msgspec.Struct, frozen=True):
    mark: str
    account: str
    type: str
    data: dict[str, object]


def _certificates(read: ReadTxn, now: int, days: Sequence[int]) -> list[Reminder]:
    found: list[Reminder] = []
    for d in sorted(set(days)):
        for not_after, serial in read.expiring_between(now, now + d * DAY):
            mark = f"expiring:{serial.hex()}:{d}"
            if read.marked(mark):
                continue
            rec = read.get_cert(serial)
            if rec is None or rec.status is not CertStatus.GOOD or not rec.account_id:
                continue
            if rec.superseded_by:  # renewed or reissued: nothing to remind anyone of
                continue
            if read.get_webhook(rec.account_id) is None:
                continue
            left = (not_after - now) // DAY
            data = {**certificate(rec), "reminder_days": d, "days_left": left}
            found.append(Reminder(mark, rec.account_id, "certificate.expiring", data))
    return found


def _licenses(read: ReadTxn, desk: LicenseDesk, now: int, days: int) -> list[Reminder]:
    found: list[Reminder] = []
    soon = now + days * DAY
    for account in read.iter_accounts():
        if read.get_webhook(account.id) is None:
            continue
        for lic in read.iter_licenses(account.id):
            view = desk.license_view(read, lic, now)
            for lot in view.lots:
                unused = lot.quantity - lot.used - lot.lapsed
                lapses = int(lot.lapses_at.timestamp())
                mark = f"lapsing:{lic.id}:{lot.lot}"
                if unused > 0 and now < lapses <= soon and not read.marked(mark):
                    found.append(
                        Reminder(
                            mark,
                            account.id,
                            "license.units_lapsing",
                            {
                                "license": lic.id,
                                "kind": lic.kind,
                                "lot": lot.lot,
                                "units": unused,
                                "lapses_at": lot.lapses_at.isoformat(),
                            },
                        )
                    )
            end = view.term_end
            if end is not None and now < int(end.timestamp()) <= soon:
                mark = f"term:{lic.id}:{int(end.timestamp())}"
                if not read.marked(mark):
                    found.append(
                        Reminder(
                            mark,
                            account.id,
                            "license.term_ending",
                            {
                                "license": lic.id,
                                "kind": lic.kind,
                                "term_end": end.isoformat(),
                                "term_last_day": str(view.term_last_day),
                            },
                        )
                    )
    return found


def due(
    read: ReadTxn, desk: LicenseDesk, *, now: int, expiry_days: Sequence[int], license_days: int
) -> list[Reminder]:
    return _certificates(read, now, expiry_days) + _licenses(read, desk, now, license_days)


def queue(reminders: Sequence[Reminder], *, now: int) -> Callable[[WriteTxn], int]:
    """The write op: each reminder whose mark is new gets its event; how many did."""

    def op(txn: WriteTxn) -> int:
        queued = 0
        for r in reminders:
            if txn.mark_once(r.mark):
                queued += bool(txn.enqueue_event(r.account, r.type, r.data, at=now))
        return queued

    return op
