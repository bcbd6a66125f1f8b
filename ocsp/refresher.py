"""The refresher: re-signs OCSP responses before their refresh point, in batches, at the
signer's REFRESH priority (below issuance, above bulk work).

It walks the due index (refresh time | serial) with a cursor, `batch` entries at a
time, keeping `parallel` batches in flight so the signer's pipeline stays full, and
commits each batch in one writer op. A response is only stored if the certificate's
status is still the one it describes: a revocation committed meanwhile has already
stored its own.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Mapping, Sequence

import msgspec
import trio

from core.base.clock import Clock, from_epoch, to_epoch
from core.base.errors import HankoError, SignerError
from core.store import (
    CertStatusView,
    GroupCommitWriter,
    OcspRecord,
    Store,
    WriteTxn,
)
from ocsp.presign import Presigner, lacks_revocation_time
from signer.api import BatchSigner, Priority

log = logging.getLogger("hanko.ocsp")

# After a failed signature, try again this much later (the old response stays served).
RETRY_AFTER = 60
# Say that the responder certificate needs renewing when it has this little left, and
# say it again (or any repeated trouble) at most this often.
RENEW_WARNING = 30 * 86400
REPEAT_LOG = 3600


class RefresherStatistics(msgspec.Struct, frozen=True):
    refreshed: int  # responses re-signed and stored since start
    failed: int  # signing failures, and revoked records without a time (retried later)
    skipped: int  # status changed while signing: the newer response stands
    expired: int  # certificates past notAfter, no longer re-signed
    rounds: int  # passes over the due index that found work
    last_round: int  # serials handled in the last such pass
    last_round_seconds: float
    last_round_per_second: float
    responder_not_after: int  # epoch seconds: the first responder certificate to expire


class OcspRefresher:
    def __init__(
        self,
        *,
        presigners: Mapping[bytes, Presigner],
        signer: BatchSigner,
        store: Store,
        writer: GroupCommitWriter,
        clock: Clock,
        batch: int = 512,
        parallel: int = 8,
        idle: float = 1.0,
    ) -> None:
        if not presigners:
            raise ValueError("at least one issuer's pre-signer")
        # Each issuer's, by its key id: a certificate's responses are its issuer's.
        self._presigners = dict(presigners)
        self._signer = signer
        self._store = store
        self._writer = writer
        self._clock = clock
        self._batch = batch
        self._parallel = parallel
        self._idle = idle
        self._refreshed = self._failed = self._skipped = self._expired = self._rounds = 0
        self._last = (0, 0.0)
        self._said: dict[str, float] = {}  # log line -> when it was last logged

    @property
    def presigners(self) -> Mapping[bytes, Presigner]:
        return self._presigners

    def replace_presigners(self, presigners: Mapping[bytes, Presigner]) -> None:
        """Re-sign with these from the next batch on (a reload added an issuer)."""
        if not presigners:
            raise ValueError("at least one issuer's pre-signer")
        self._presigners = dict(presigners)

    def statistics(self) -> RefresherStatistics:
        n, seconds = self._last
        return RefresherStatistics(
            refreshed=self._refreshed,
            failed=self._failed,
            skipped=self._skipped,
            expired=self._expired,
            rounds=self._rounds,
            last_round=n,
            last_round_seconds=round(seconds, 4),
            last_round_per_second=round(n / seconds, 1) if seconds > 0 else 0.0,
            responder_not_after=min(p.responder_not_after for p in self._presigners.values()),
        )

    def due(self) -> int:
        with self._store.read() as txn:
            return txn.count_ocsp_due(to_epoch(self._clock.now()) + 1)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            try:
                self.follow_responder()
                await self.refresh_once()
            except HankoError as exc:  # store or signer trouble: keep serving, retry
                self._say(logging.WARNING, f"ocsp refresher: {exc.message}")
            # Everything due was handled: what falls due next is at least a moment away.
            await trio.sleep(self._idle)

    def follow_responder(self) -> bool:
        """Sign under the responder certificates the store holds for our keys where
        they are renewed ones (`hanko ca renew-responder` puts them there while we
        run). True if one was adopted; warns when one is close to its end."""
        adopted_any = False
        for ps in self._presigners.values():
            with self._store.read() as txn:
                encoded = txn.get_ocsp_envelope(ps.key_hash)
            adopted = encoded is not None and ps.adopt(encoded)
            if adopted:
                adopted_any = True
                log.info(
                    "ocsp refresher: signing under the renewed responder certificate of "
                    "%s, valid until %s",
                    ps.encoder.issuer.subject.rfc4514_string(),
                    from_epoch(ps.responder_not_after).isoformat(),
                )
            left = ps.responder_not_after - to_epoch(self._clock.now())
            if left < RENEW_WARNING:
                self._say(
                    logging.WARNING,
                    "ocsp refresher: the OCSP responder certificate of "
                    f"{ps.encoder.issuer.subject.rfc4514_string()} expires at "
                    f"{from_epoch(ps.responder_not_after).isoformat()}; renew it with "
                    "`hanko ca renew-responder`",
                )
        return adopted_any

    def _say(self, level: int, line: str) -> None:
        # A retry a second must not write a line a second: the same line once an hour.
        now = time.monotonic()
        last = self._said.get(line)
        if last is not None and now - last < REPEAT_LOG:
            return
        if len(self._said) > 64:
            self._said.clear()
        self._said[line] = now
        log.log(level, "%s", line)

    async def refresh_once(self) -> int:
        """Re-sign everything due now; returns how many serials were handled.

        Batches stream: a cursor walks the due index a batch at a time and the next
        batch is read as soon as one of the `parallel` in flight is committed, so the
        signer never idles waiting for the slowest batch of a fixed round."""
        started = time.perf_counter()
        now = self._clock.now().replace(microsecond=0)
        before = to_epoch(now) + 1
        slots = trio.Semaphore(self._parallel)
        handled = 0
        after = b""
        async with trio.open_nursery() as nursery:
            while True:
                await slots.acquire()
                with self._store.read() as txn:
                    due = txn.ocsp_due(before, self._batch, after=after)
                    records = [(serial, txn.get_cert_status(serial)) for _, serial in due]
                    generation = txn.status_generation()
                if not due:
                    slots.release()
                    break
                after = due[-1][0]
                handled += len(due)
                nursery.start_soon(self._refresh_slot, records, generation, now, slots)
        if handled:
            self._rounds += 1
            self._last = (handled, time.perf_counter() - started)
        return handled

    async def _refresh_slot(
        self,
        records: list[tuple[bytes, CertStatusView | None]],
        generation: int,
        now: dt.datetime,
        slots: trio.Semaphore,
    ) -> None:
        try:
            at = to_epoch(now)
            live: list[CertStatusView] = []
            gone: list[bytes] = []
            broken: list[bytes] = []
            for serial, r in records:
                if r is None or r.not_after < at:
                    gone.append(serial)
                elif lacks_revocation_time(r):
                    # Never "good" for a revoked certificate, and no revoked response
                    # without its time: set it aside so the rest of the pass goes on.
                    broken.append(serial)
                else:
                    live.append(r)
            await self._refresh_batch(live, now, gone=gone, broken=broken, read_at=generation)
        finally:
            slots.release()

    async def _refresh_batch(
        self,
        records: list[CertStatusView],
        now: dt.datetime,
        *,
        gone: Sequence[bytes] = (),
        broken: Sequence[bytes] = (),
        read_at: int | None = None,
    ) -> None:
        """Sign `records`' responses and store those whose status did not change
        meanwhile; stop re-signing `gone` (expired or deleted) serials; try `broken`
        ones (revoked without a revocation time) again later. One commit.

        `read_at` is the store's status generation where `records` were read: if it
        has not moved by the commit, no status changed and none is read again."""
        by_issuer: dict[bytes, list[CertStatusView]] = {}
        orphans: list[bytes] = []
        for rec in records:
            if rec.issuer in self._presigners:
                by_issuer.setdefault(rec.issuer, []).append(rec)
            else:
                orphans.append(rec.serial)
        records = [r for group in by_issuer.values() for r in group]
        parts = [
            (
                self._presigners[issuer],
                self._presigners[issuer].for_records(group, at=to_epoch(now)),
            )
            for issuer, group in by_issuer.items()
        ]
        items = [item for ps, pendings in parts for item in ps.sign_items(*pendings)]
        sigs = await self._signer.sign_many(items, priority=Priority.REFRESH)
        results: list[OcspRecord | SignerError] = []
        pos = 0
        for ps, pendings in parts:
            n = sum(len(p.tbs) for p in pendings)
            results += ps.records(pendings, sigs[pos : pos + n])
            pos += n
        broken = [*broken, *orphans]
        if orphans:
            self._say(
                logging.ERROR,
                f"ocsp refresher: {len(orphans)} certificates of an issuer no longer "
                "configured cannot be re-signed (keep every issuer with valid certificates "
                "in [[ca.issuers]])",
            )
        retry_at = to_epoch(now) + RETRY_AFTER

        def op(txn: WriteTxn) -> tuple[int, int, int]:
            for serial in gone:
                txn.unschedule_ocsp(serial)
            for serial in broken:
                txn.schedule_ocsp(serial, retry_at)
            signed: list[tuple[bytes, OcspRecord]] = []
            failed = len(broken)
            skipped = 0
            recheck = read_at is None or txn.status_generation() != read_at
            for rec, result in zip(records, results, strict=True):
                if recheck:
                    current = txn.get_cert_status(rec.serial)
                    if current is None or current.status is not rec.status:
                        skipped += 1
                        continue
                if isinstance(result, OcspRecord):
                    signed.append((rec.serial, result))
                else:
                    txn.schedule_ocsp(rec.serial, retry_at)
                    failed += 1
            return txn.put_ocsp_many(signed), failed, skipped

        stored, failed, skipped = await self._writer.submit(op)
        self._refreshed += stored
        self._failed += failed
        self._skipped += skipped
        self._expired += len(gone)
        for serial in broken:
            log.error(
                "ocsp refresher: certificate %s is revoked without a revocation time; "
                "its last response stays served until it is repaired (retry in %ds)",
                serial.hex(),
                RETRY_AFTER,
            )
        if failed > len(broken):
            log.warning(
                "ocsp refresher: %d signings failed, retry in %ds",
                failed - len(broken),
                RETRY_AFTER,
            )
