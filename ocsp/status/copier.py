"""The one writer of a responder host's copy (ocsp/status/copy_store.py): it keeps the
copy equal to the host's Redis (usually a read-only replica of the CA's primary) with
redis-py's asyncio client, and says once a second whether the host should get traffic.

- At start the copy answers at once, whatever Redis does. With Redis reachable, the
  change log (`{prefix}log`, ocsp/status/redis_layout.py) brings it up to date from its
  own position; a copy never loaded, a position the log no longer holds, or a Redis
  rebuilt is loaded whole: SCAN and MGET into the copy not served, swapped in one
  commit, while changes logged meanwhile are applied to the served one as they come.
- Then it follows the log (XREAD BLOCK): each batch's keys read with MGET as Redis holds
  them now and written in one commit, so a revocation reaches the responders within a
  round trip of the replica having it.
- Redis unreachable or empty (no `seq`: flushed, or being rebuilt by `hanko replication
  resync`): the copy stays as it is and is served until each response's nextUpdate;
  /readyz says so once that has lasted `max_lag`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import msgspec
from redis.exceptions import RedisError

from ocsp.status.copy_store import Beat, CopyStore
from ocsp.status.readiness import Observed, readiness
from ocsp.status.redis_layout import Layout, LogEntry, log_entry, log_step

log = logging.getLogger("hanko.responder.copier")
POLL = 1.0  # seconds between looks at INFO replication and `seq`, and between beats
MISSED = 2.0  # `seq` ahead of the copy this long with nothing logged: load it all
SCAN_COUNT = 10_000
MGET_CHUNK = 10_000
LOAD_COMMIT = 100_000  # responses per commit of a whole load
LOG_READ = 256  # log entries read at once
RETRY = (0.2, 0.5, 1.0, 2.0)
_ENCODE = msgspec.json.Encoder()


def _glob_escape(text: bytes) -> bytes:
    return b"".join(b"\\" + bytes([c]) if c in b"*?[]\\" else bytes([c]) for c in text)


class CopierStatistics(msgspec.Struct, frozen=True):
    loads: int
    applied: int  # log entries applied
    reconnects: int
    seq: int


class Copier:
    def __init__(
        self,
        client: Any,
        store: CopyStore,
        *,
        prefix: str,
        max_lag: float,
        clock: Callable[[], float],
        monotonic: Callable[[], float],
    ) -> None:
        """`clock`: wall seconds (persisted times); `monotonic`: for intervals."""
        self._client = client
        self._store = store
        self.layout = Layout(prefix)
        self._max_lag = max_lag
        self._clock = clock
        self._monotonic = monotonic
        self._seen = Observed(reachable=False, seq=None)
        # Until Redis answers, the copy is as old as when it was last known current.
        self._last_answer = store.synced_at() or clock()
        self._down_since: float | None = None
        self._ahead_since: float | None = None
        self._reload = False
        self._loading: int | None = None
        self.loads = 0
        self.applied = 0
        self.reconnects = 0
        self._o = self.layout.ocsp(b"")
        self._e = self.layout.envelope(b"")
        self._c = self.layout.crl("")

    def statistics(self) -> CopierStatistics:
        return CopierStatistics(
            loads=self.loads,
            applied=self.applied,
            reconnects=self.reconnects,
            seq=self._seq(),
        )

    def _seq(self) -> int:
        seq = self._store.seq()
        return -1 if seq is None else seq

    # -- the loop --

    async def run(self) -> None:
        """Keep the copy equal to Redis until cancelled."""
        failures = 0
        self._beat()
        while True:
            try:
                await self._session()
                failures = 0
            except (RedisError, OSError) as exc:
                if failures == 0:
                    log.warning("copier: Redis unavailable, serving the copy as it is: %s", exc)
                self.reconnects += 1
                self._seen = msgspec.structs.replace(self._seen, reachable=False)
                self._beat()
                await asyncio.sleep(RETRY[min(failures, len(RETRY) - 1)])
                failures += 1

    async def _session(self) -> None:
        """Until Redis fails: adopt its profile, catch up, follow."""
        profile = await self._observe()
        if profile is None or self._seen.seq is None:
            self._beat()
            await asyncio.sleep(POLL)
            return
        if profile != self._store.profile():
            log.info("copier: the CA's profile is new; responders restart with it")
            self._store.set_profile(profile)
        if self._store.seq() is None or self._seen.seq < self._seq():
            self._reload = True
        next_look = self._monotonic() + POLL
        while True:
            if self._reload:
                await self._load()
            entries = await self._read_log(block=True)
            for entry in entries:
                if log_step(entry, self._seq()) == "load":
                    self._reload = True
                    break
                await self._apply(entry)
            if self._monotonic() >= next_look:
                next_look = self._monotonic() + POLL
                profile = await self._observe()
                if profile is not None and profile != self._store.profile():
                    self._store.set_profile(profile)
                self._beat()

    async def _read_log(self, *, block: bool) -> list[LogEntry]:
        after = self._store.log_id() or b"0-0"
        if block:
            found = await self._client.xread(
                {self.layout.log: after}, count=LOG_READ, block=int(POLL * 1000)
            )
            rows = found[0][1] if found else []
        else:
            rows = await self._client.xrange(self.layout.log, b"(" + after, b"+", count=LOG_READ)
        entries = []
        for entry_id, fields in rows:
            try:
                entries.append(log_entry(entry_id, fields))
            except ValueError:
                log.warning("copier: a change log entry that does not decode, ignored")
        return entries

    async def _apply(self, entry: LogEntry) -> None:
        changes = await self._read(entry.keys)
        self._store.apply(seq=entry.last, log_id=entry.id, changes=changes)
        self.applied += 1

    async def _read(self, keys: list[bytes]) -> list[tuple[str, bytes, bytes | None]]:
        """The keys as Redis holds them now, as the copy's (kind, key, value)."""
        out: list[tuple[str, bytes, bytes | None]] = []
        for i in range(0, len(keys), MGET_CHUNK):
            chunk = keys[i : i + MGET_CHUNK]
            values = await self._client.mget(chunk) if chunk else []
            for key, value in zip(chunk, values, strict=True):
                split = self._split(key)
                if split is not None:
                    out.append((split[0], split[1], value))
        return out

    def _split(self, key: bytes) -> tuple[str, bytes] | None:
        for kind, prefix in (("o", self._o), ("e", self._e), ("c", self._c)):
            if key.startswith(prefix):
                return kind, key[len(prefix) :]
        return None

    # -- a whole load --

    async def _load(self) -> None:
        """Everything Redis holds into the copy not served, swapped in with the changes
        logged meanwhile; changes logged during the load are also applied to the copy
        served, so revocations are not held up by it."""
        pipe = self._client.pipeline(transaction=True)
        pipe.get(self.layout.seq)
        pipe.xrevrange(self.layout.log, count=1)
        raw_seq, top = await pipe.execute()
        if raw_seq is None:
            self._reload = False  # nothing whole to load: keep the copy; `seq` back says
            return
        seq, tail = int(raw_seq), (top[0][0] if top else b"0-0")
        started = self._monotonic()
        self._store.begin_load()
        envelopes, files = await self._scan_into()
        since = await self._logged_after(tail)
        after = since[-1].id if since else tail
        keys = sorted({k for e in since if not e.reload for k in e.keys})
        changes = await self._read(keys)
        last = max([seq, *(e.last for e in since)])
        self._store.finish_load(
            seq=last,
            log_id=after,
            envelopes=envelopes,
            files=files,
            changes=changes,
            at=self._clock(),
        )
        self._store.sync()
        log.info(
            "copier: loaded %d responses from Redis in %.1f s",
            self._loading,
            self._monotonic() - started,
        )
        self._loading = None
        self._reload = any(e.reload for e in since)  # rebuilt again meanwhile
        self._ahead_since = None
        self.loads += 1
        self._beat()

    async def _scan_into(self) -> tuple[dict[bytes, bytes], dict[bytes, bytes]]:
        """SCAN and MGET: responses into the copy not served, envelopes and CRL files
        (a few) returned."""
        envelopes: dict[bytes, bytes] = {}
        files: dict[bytes, bytes] = {}
        self._loading = 0
        next_look = self._monotonic() + POLL
        cursor: int = 0
        match = _glob_escape(self.layout.prefix) + b"[oec]:*"
        batch: list[tuple[bytes, bytes]] = []
        # One commit in a thread of its own while the next keys are read (py-lmdb lets
        # go of the GIL in LMDB): reading Redis and writing the copy overlap.
        writing: asyncio.Future[None] | None = None
        try:
            while True:
                cursor, keys = await self._client.scan(cursor, match=match, count=SCAN_COUNT)
                for kind, key, value in await self._read(keys):
                    if value is None:
                        continue
                    if kind == "o":
                        batch.append((key, value))
                    elif kind == "e":
                        envelopes[key] = value
                    else:
                        files[key] = value
                if len(batch) >= LOAD_COMMIT or (cursor == 0 and batch):
                    if writing is not None:
                        await writing
                    writing = asyncio.ensure_future(
                        asyncio.to_thread(self._store.put_loaded, batch)
                    )
                    self._loading += len(batch)
                    batch = []
                if self._monotonic() >= next_look:
                    next_look = self._monotonic() + POLL
                    await self._keep_served_current()
                    self._beat()
                if cursor == 0:
                    return envelopes, files
        finally:
            if writing is not None:
                await asyncio.gather(writing, return_exceptions=cursor != 0)

    async def _logged_after(self, after: bytes) -> list[LogEntry]:
        """Every log entry after `after`."""
        since: list[LogEntry] = []
        while True:
            rows = await self._client.xrange(self.layout.log, b"(" + after, b"+", count=LOG_READ)
            if not rows:
                return since
            for entry_id, fields in rows:
                try:
                    since.append(log_entry(entry_id, fields))
                except ValueError:
                    continue
            after = rows[-1][0]

    async def _keep_served_current(self) -> None:
        """During a load: the served copy follows the log as usual."""
        if self._store.seq() is None:
            return
        for entry in await self._read_log(block=False):
            if log_step(entry, self._seq()) != "apply":
                break  # the load in progress covers it
            await self._apply(entry)

    # -- watching --

    async def _observe(self) -> bytes | None:
        """INFO replication, `seq` and the profile: what Redis is now (the profile)."""
        pipe = self._client.pipeline(transaction=False)
        pipe.info("replication")
        pipe.get(self.layout.seq)
        pipe.get(self.layout.profile)
        info, raw_seq, profile = await pipe.execute()
        now = self._clock()
        self._last_answer = now
        role = str(info.get("role", "master"))
        link_up = role != "slave" or info.get("master_link_status") == "up"
        down_for = 0.0
        if not link_up:
            # Redis reports -1 for a link that never came up: count from when this
            # process first saw it down too.
            self._down_since = self._down_since or now
            reported = float(info.get("master_link_down_since_seconds", -1) or -1)
            down_for = max(reported, now - self._down_since)
        else:
            self._down_since = None
        seq = int(raw_seq) if raw_seq is not None else None
        mine = self._seq()
        if seq is not None and mine >= 0 and seq < mine:
            self._reload = True  # a Redis rebuilt to another point
        if seq is not None and seq > mine:
            self._ahead_since = self._ahead_since or now
            if now - self._ahead_since > MISSED:
                self._reload = True  # changes the log did not bring
        else:
            self._ahead_since = None
        self._seen = Observed(
            reachable=True, seq=seq, role=role, link_up=link_up, link_down_for=down_for
        )
        return profile if isinstance(profile, bytes) else None

    def _beat(self) -> None:
        now = self._clock()
        seen = self._seen
        if not seen.reachable:
            seen = msgspec.structs.replace(seen, unreachable_for=now - self._last_answer)
        responses, crls = self._store.counts()
        state = readiness(
            seen,
            loaded=self._store.seq() is not None,
            seq=self._seq(),
            max_lag=self._max_lag,
            responses=responses,
            crls=crls,
            loading=self._loading,
        )
        current = (
            seen.reachable
            and seen.link_up
            and seen.seq is not None
            and self._seq() >= seen.seq
            and self._loading is None
        )
        self._store.beat(
            Beat(at=now, ready=state.ready, body=_ENCODE.encode(state) + b"\n"), synced=current
        )
