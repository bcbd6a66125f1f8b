"""The CRL updater of `hanko serve`: publishes what crl.schedule says is due, forever.

It polls the store (cheap: one small record per partition) rather than being told about
revocations, so a revocation made by `hanko revoke` in another process is published as
surely as one made through the RPC. A build that fails is logged and retried on a later
poll; it never stops the others.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence

import msgspec
import trio

from core.base.errors import HankoError
from crl.publisher import CrlPublisher, PublishedCrl

log = logging.getLogger("hanko.crl")


class CrlUpdaterStatistics(msgspec.Struct, frozen=True, kw_only=True):
    polls: int
    published_full: int
    published_delta: int
    failures: int
    last_error: str | None
    building: int | None  # the partition being built now
    build_seconds: dict[str, float]  # the last build of each file, by its name


class CrlUpdater:
    def __init__(
        self,
        publishers: CrlPublisher | Sequence[CrlPublisher],
        *,
        change_delay: dt.timedelta,
        cadence: dt.timedelta,
        poll: float = 1.0,
        retry_after: float = 30.0,
    ) -> None:
        # One per issuer: each publishes its own shards in its own folder.
        self._publishers = (
            [publishers] if isinstance(publishers, CrlPublisher) else list(publishers)
        )
        self._change_delay = change_delay
        self._cadence = cadence
        self._poll = poll
        self._retry_after = retry_after
        self._polls = 0
        self._full = 0
        self._delta = 0
        self._failures = 0
        self._last_error: str | None = None
        self._building: int | None = None
        self._failed_at: dict[tuple[int, int], float] = {}
        self._build_seconds: dict[str, float] = {}

    def replace_publishers(self, publishers: Sequence[CrlPublisher]) -> None:
        """Publish these issuers' CRLs from the next poll on (a reload added one)."""
        self._publishers = list(publishers)
        self._failed_at.clear()

    async def update_once(self) -> list[PublishedCrl]:
        """Publish every CRL due now; returns what was written."""
        self._polls += 1
        jobs = [
            (n, publisher, job)
            for n, publisher in enumerate(self._publishers)
            for job in publisher.due(change_delay=self._change_delay, cadence=self._cadence)
        ]
        published: list[PublishedCrl] = []
        for n, publisher, job in jobs:
            failed = self._failed_at.get((n, job.partition))
            if failed is not None and trio.current_time() - failed < self._retry_after:
                continue
            self._building = job.partition
            try:
                done = await publisher.run([job])
            except HankoError as exc:
                self._failures += 1
                self._last_error = f"{publisher.name} partition {job.partition}: {exc.message}"
                self._failed_at[(n, job.partition)] = trio.current_time()
                log.warning("CRL %s of %s build failed: %s", job, publisher.name, exc.message)
                continue
            finally:
                self._building = None
            self._failed_at.pop((n, job.partition), None)
            for crl in done:
                self._build_seconds[publisher.file_key(crl.path)] = sum(crl.phases.values())
                if crl.kind.value == "full":
                    self._full += 1
                else:
                    self._delta += 1
                log.info(
                    "CRL %s number %d: %d entries (%s)",
                    publisher.file_key(crl.path),
                    crl.number,
                    crl.entries,
                    job.why,
                )
            published.extend(done)
        return published

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            await self.update_once()
            await trio.sleep(self._poll)

    def statistics(self) -> CrlUpdaterStatistics:
        return CrlUpdaterStatistics(
            polls=self._polls,
            published_full=self._full,
            published_delta=self._delta,
            failures=self._failures,
            last_error=self._last_error,
            building=self._building,
            build_seconds=dict(self._build_seconds),
        )
