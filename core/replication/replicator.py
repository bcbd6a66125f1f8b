"""The CA side of status replication: the store's feed (core/store/replication.py)
brought to a Redis primary after each commit, in commit order, a pipelined MULTI/EXEC
per batch, then a change notification for the responders.

Redis never holds issuance or revocation up: the feed is durable in LMDB and the
cursor moves only once Redis has acknowledged a batch, so a Redis that is down or slow
only makes the feed longer; the replicator retries with backoff and catches up from
the cursor. A Redis that comes back without what it had (no `seq`, or one behind the
cursor: a flushed or replaced primary) is rebuilt from LMDB first (`resync`).

redis-py's sync client runs in a worker thread, one batch per hop: `hanko bench
redis-clients` measured it at twice coredis's pipelined writes (coredis runs on trio
natively) for half the CPU.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import trio

from core.store import GroupCommitWriter, Store
from core.store.replication import CRL, ENVELOPE, OCSP
from ocsp.status.redis_layout import (
    LOG_ENTRIES,
    Layout,
    Profile,
    change_message,
    crl_value,
    log_fields,
    ocsp_expiry_ms,
    profile_value,
)

log = logging.getLogger("hanko.replication")
IDLE = 0.05  # seconds between looks at the feed when Redis is up to date
BACKOFF = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
RESYNC_CHUNK = 5000


class ReplicatorStatistics(msgspec.Struct, frozen=True):
    connected: bool
    fed: int  # the last change in the store's feed
    cursor: int  # the last change Redis has
    lag: int  # changes not in Redis yet
    batches: int
    changes: int  # changes written (one per feed entry)
    errors: int
    resyncs: int
    last_error: str | None
    last_write_age: float | None  # seconds since the last batch Redis acknowledged


class Replicator:
    def __init__(
        self,
        *,
        store: Store,
        writer: GroupCommitWriter,
        client: Callable[[], Any],
        prefix: str,
        crl_dir: Path,
        profile: Profile,
        batch: int = 1000,
    ) -> None:
        """`client`: makes a redis-py (sync) client; called again after a failure.
        `profile`: what responder hosts need to know of the CA, written on each
        (re)connection."""
        self._profile = profile_value(profile)
        self._store = store
        self._writer = writer
        self._make_client = client
        self._client: Any = None
        self.layout = Layout(prefix)
        self._crl_dir = crl_dir
        self._batch = batch
        self._connected = False
        self._batches = 0
        self._changes = 0
        self._errors = 0
        self._resyncs = 0
        self._last_error: str | None = None
        self._last_write: float | None = None
        self._checked = False  # Redis's seq compared with the cursor since (re)connecting
        # The last change Redis has acknowledged. The store's cursor is moved to it by
        # a commit of its own, off the path to Redis: a durable commit (an fsync, at
        # times hundreds of ms here) must not hold the next revocation back. After a
        # crash the cursor may trail Redis: the changes between are written again.
        self._sent = 0
        self._sent_moved = trio.Event()
        # The last batch the change log has: after a crash the changes since the
        # durable cursor are written again, and logged only past it (ids only grow).
        self._logged = 0

    def statistics(self) -> ReplicatorStatistics:
        with self._store.read() as txn:
            fed, cursor = txn.replication_position()
        cursor = max(cursor, self._sent)
        return ReplicatorStatistics(
            connected=self._connected,
            fed=fed,
            cursor=cursor,
            lag=fed - cursor,
            batches=self._batches,
            changes=self._changes,
            errors=self._errors,
            resyncs=self._resyncs,
            last_error=self._last_error,
            last_write_age=(
                time.monotonic() - self._last_write if self._last_write is not None else None
            ),
        )

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Feed on, then replicate until cancelled."""
        with self._store.read() as txn:
            on = txn.replication_on()
        if not on:
            await self._writer.submit(lambda t: t.set_replication(True))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._keep_cursor)
            task_status.started()
            await self._replicate()

    async def _keep_cursor(self) -> None:
        """Move the store's cursor to what Redis has, one commit at a time (a commit
        covers every batch acknowledged while the one before it was under way)."""
        with self._store.read() as txn:
            _, durable = txn.replication_position()
        while True:
            await self._sent_moved.wait()
            self._sent_moved = trio.Event()
            target = self._sent
            if target <= durable:
                continue
            try:
                await self._writer.submit(functools.partial(_record_cursor, upto=target))
            except Exception as exc:  # the store refusing a write: retried at the next batch
                log.warning("replication: cannot record the cursor: %s", exc)
                continue
            durable = target

    def _acknowledged(self, last: int) -> None:
        self._sent = max(self._sent, last)
        self._sent_moved.set()

    async def _replicate(self) -> None:
        failures = 0
        while True:
            try:
                moved = await self.step()
            except Exception as exc:  # Redis down, slow, refusing: the feed waits
                self._failed(exc, failures)
                await trio.sleep(BACKOFF[min(failures, len(BACKOFF) - 1)])
                failures += 1
                continue
            if failures:
                log.info("replication: Redis is back after %d failed attempts", failures)
                failures = 0
            if not moved:
                await trio.sleep(IDLE)

    def _failed(self, exc: Exception, failures: int) -> None:
        self._errors += 1
        self._connected = False
        self._checked = False
        self._client = None
        self._last_error = f"{type(exc).__name__}: {exc}"
        if failures == 0:
            log.warning("replication: Redis unavailable, the feed waits: %s", self._last_error)

    async def step(self) -> int:
        """One batch: how many changes Redis now has that it had not."""
        if self._client is None:
            self._client = self._make_client()
        if not self._checked:
            await self._check_redis()
        with self._store.read() as txn:
            _, cursor = txn.replication_position()
            changes = txn.replication_changes(max(cursor, self._sent), self._batch)
            if not changes:
                self._connected = True
                return 0
            writes = [self._write_for(txn, change) for _, change in changes]
        last = changes[-1][0]
        await trio.to_thread.run_sync(self._send, writes, changes[0][0], last)
        self._acknowledged(last)
        self._connected = True
        self._batches += 1
        self._changes += len(changes)
        self._last_write = time.monotonic()
        return len(changes)

    async def _check_redis(self) -> None:
        """After (re)connecting: the CA's profile, and a Redis that lost what it had
        rebuilt."""
        await trio.to_thread.run_sync(self._client.set, self.layout.profile, self._profile)
        raw = await trio.to_thread.run_sync(self._client.get, self.layout.seq)
        top = await trio.to_thread.run_sync(
            functools.partial(self._client.xrevrange, self.layout.log, count=1)
        )
        self._logged = int(top[0][0].split(b"-", 1)[0]) if top else 0
        with self._store.read() as txn:
            _, cursor = txn.replication_position()
        cursor = max(cursor, self._sent)
        if raw is None or int(raw) < cursor:
            log.warning(
                "replication: Redis has %s, the store's cursor is %d: rebuilding it",
                "nothing" if raw is None else f"seq {int(raw)}",
                cursor,
            )
            await self.resync()
        self._checked = True

    def _write_for(self, txn: Any, change: bytes) -> tuple[bytes, bytes | None, int | None]:
        """(key, value or None to delete it, expiry in ms or None) for one change, from
        what the store holds now (several changes of one key write its last state)."""
        kind, what = change[:1], change[1:]
        if kind == OCSP:
            raw = txn.ocsp_raw(what)
            expiry = ocsp_expiry_ms(raw) if raw is not None else None
            return self.layout.ocsp(what), raw if expiry is not None else None, expiry
        if kind == ENVELOPE:
            return self.layout.envelope(what), txn.get_ocsp_envelope(what), None
        if kind == CRL:
            return self.layout.crl(what.decode()), self._crl(what.decode()), None
        raise ValueError(f"unknown change kind {kind!r}")

    def _crl(self, name: str) -> bytes | None:
        path = self._crl_dir / name
        try:
            return crl_value(int(path.stat().st_mtime), path.read_bytes())
        except FileNotFoundError:
            return None

    def _send(
        self, writes: list[tuple[bytes, bytes | None, int | None]], first: int, last: int
    ) -> None:
        keys = [key for key, _, _ in writes]
        pipe = self._client.pipeline(transaction=True)
        _queue(pipe, writes)
        pipe.set(self.layout.seq, str(last))
        if last > self._logged:
            pipe.xadd(
                self.layout.log,
                log_fields(first, keys),
                id=f"{last}-*",
                maxlen=LOG_ENTRIES,
                approximate=True,
            )
        pipe.publish(self.layout.channel, change_message(last, keys))
        pipe.execute()
        self._logged = max(self._logged, last)

    async def resync(self) -> int:
        """Write everything the store holds to Redis (responses, envelopes, CRL files),
        then its `seq` at the feed's end: how many keys were written."""
        with self._store.read() as txn:
            fed, _ = txn.replication_position()
            envelopes = txn.ocsp_envelopes()
        written = 0
        writes: list[tuple[bytes, bytes | None, int | None]] = [
            (self.layout.envelope(h), env, None) for h, env in envelopes
        ]
        # The one-issuer form's shards at the top, every other issuer's in its folder.
        for path in sorted([*self._crl_dir.glob("*.crl"), *self._crl_dir.glob("*/*.crl")]):
            name = path.relative_to(self._crl_dir).as_posix()
            writes.append((self.layout.crl(name), self._crl(name), None))
        await trio.to_thread.run_sync(self._send_plain, writes)
        written += len(writes)
        after = b""
        while True:
            with self._store.read() as txn:
                chunk = txn.ocsp_raw_after(after, RESYNC_CHUNK)
            if not chunk:
                break
            after = chunk[-1][0]
            batch: list[tuple[bytes, bytes | None, int | None]] = []
            for key, raw in chunk:
                expiry = ocsp_expiry_ms(raw)
                if expiry is not None:
                    batch.append((self.layout.ocsp(key), raw, expiry))
            await trio.to_thread.run_sync(self._send_plain, batch)
            written += len(batch)
        # Everything fed before the walk began is in Redis now; what was fed while
        # walking is replayed on top by the next steps.
        await trio.to_thread.run_sync(self._finish_resync, fed)
        # Durable at once: `hanko replication resync` exits right after.
        await self._writer.submit(lambda t: t.replicated(fed))
        self._sent = max(self._sent, fed)
        self._resyncs += 1
        return written

    async def resync_now(self) -> int:
        """`hanko replication resync`: feed on (so nothing committed from now on is
        missed), then rebuild Redis."""
        await self._writer.submit(lambda t: t.set_replication(True))
        self._client = self._make_client()
        await trio.to_thread.run_sync(self._client.set, self.layout.profile, self._profile)
        return await self.resync()

    def _finish_resync(self, fed: int) -> None:
        # Responders keep what they have while Redis has no `seq` (an empty or
        # half-rebuilt Redis); the reload notice tells them it is whole again.
        pipe = self._client.pipeline(transaction=True)
        pipe.set(self.layout.seq, str(fed))
        # The log starts again: what it held is in the rebuilt whole.
        pipe.delete(self.layout.log)
        pipe.xadd(self.layout.log, log_fields(fed, [], reload=True), id=f"{fed}-*")
        pipe.publish(self.layout.channel, change_message(fed, [], reload=True))
        pipe.execute()
        self._logged = fed

    def _send_plain(self, writes: list[tuple[bytes, bytes | None, int | None]]) -> None:
        pipe = self._client.pipeline(transaction=False)
        _queue(pipe, writes)
        pipe.execute()


def _record_cursor(txn: Any, *, upto: int) -> None:
    txn.replicated(upto)


def _queue(pipe: Any, writes: list[tuple[bytes, bytes | None, int | None]]) -> None:
    """Each write as Redis commands: a value with its expiry, or the key deleted."""
    for key, value, expiry in writes:
        if value is None:
            pipe.delete(key)
        elif expiry is not None:
            pipe.set(key, value, pxat=expiry)
        else:
            pipe.set(key, value)
