"""The periodic jobs the leader of `hanko serve` runs beside the refresher and the CRL
updater: reminders to queue, licence lapses to record, and the outbox's figures."""

from __future__ import annotations

import functools
import logging
from typing import Any

import trio

from core.base.clock import Clock, to_epoch
from core.base.errors import HankoError
from core.cmd.wiring import license_settings
from core.config import Config
from core.issuance.engine import IssuanceEngine
from core.issuance.renewals_due import issue_due
from core.licenses.desk import LicenseDesk
from core.notify import reminders
from core.notify.delivery import Notifier
from core.store import GroupCommitWriter, Store, WriteTxn

log = logging.getLogger("hanko")


def notify_statistics(notify: Notifier, store: Store) -> dict[str, Any]:
    with store.read() as txn:
        counts = txn.outbox_counts()
    return {"notifier": notify.statistics(), "outbox": counts}


# Delivered and given-up events stay in the outbox this long (for `hanko notify status`).
OUTBOX_KEEP_DAYS = 7


async def send_reminders(
    cfg: Config, store: Store, writer: GroupCommitWriter, clock: Clock
) -> None:
    """Queue the reminders due (expiring certificates, lapsing licences), at start and
    every `[notify] sweep_every`."""
    desk = LicenseDesk(license_settings(cfg), clock)
    while True:
        now = to_epoch(clock.now())
        with store.read() as txn:
            due = reminders.due(
                txn,
                desk,
                now=now,
                expiry_days=cfg.notify.expiry_days,
                license_days=cfg.notify.license_days,
            )
        keep_until = now - OUTBOX_KEEP_DAYS * 86400
        try:
            if due:
                n = await writer.submit(reminders.queue(due, now=now))
                log.info("queued %d reminders", n, extra={"event": "notify.reminders"})
            await writer.submit(functools.partial(WriteTxn.prune_settled, before=keep_until))
        except HankoError as exc:
            log.warning("queueing reminders failed: %s", exc.message)
        await trio.sleep(cfg.notify.sweep_every.seconds)


LAPSE_SWEEP_SECONDS = 3600


async def record_lapses(writer: GroupCommitWriter, desk: LicenseDesk) -> None:
    """Write the lapses time has brought into the ledger, hourly. Views and issuance do
    not wait for it (they apply lapses as of now); this keeps the ledger current for
    accounts nobody touches."""
    while True:
        try:
            n = await writer.submit(desk.sweep())
        except HankoError as exc:
            log.warning("recording license lapses failed: %s", exc.message)
        else:
            if n:
                log.info("recorded %d license lapses", n)
        await trio.sleep(LAPSE_SWEEP_SECONDS)


async def issue_renewals(engine: IssuanceEngine, clock: Clock, every: float) -> None:
    """Issue the scheduled renewals whose issue window opened, every `every` seconds."""
    while True:
        try:
            done = await issue_due(engine, now=to_epoch(clock.now()))
        except HankoError as exc:
            log.warning("issuing scheduled renewals failed: %s", exc.message)
        else:
            if done.issued or done.failed:
                log.info(
                    "scheduled renewals: %d issued, %d failed, %d postponed",
                    done.issued,
                    done.failed,
                    done.postponed,
                    extra={"event": "renewals.pass"},
                )
        await trio.sleep(every)
