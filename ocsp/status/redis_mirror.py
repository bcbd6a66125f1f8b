"""The edge that keeps a responder process's Mirror (ocsp/status/mirror.py) equal to its Redis,
usually a read-only replica on the same host: redis-py's asyncio client on the
responder's uvloop.

- Subscribe to the change channel first, then load everything (SCAN and MGET), so no
  change made during the load is lost: its notification waits in the subscription and
  is applied after the load, read again from Redis.
- Each notification names the keys a batch wrote; they are read with one MGET and
  patched into the copy. One task does both, so a load never overwrites a newer change.
- Once a second, INFO replication and `seq`: a notification missed (`seq` ahead of the
  copy for more than MISSED seconds), a replica link that came back (a full resync of
  the replica sends no notification) or a rebuilt Redis makes it load again.
- Redis unreachable or empty (no `seq`: flushed, or being rebuilt by `hanko replication
  resync`): the copy stays as it is and is served until each response's nextUpdate.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from core.base.errors import HankoError
from ocsp.status.mirror import Mirror, Observed, Readiness
from ocsp.status.redis_layout import CHANGE, PROFILE, Layout

log = logging.getLogger("hanko.ocsp.redis")
POLL = 1.0  # seconds between looks at INFO replication and `seq`
MISSED = 2.0  # `seq` ahead of the copy this long: a notification was missed
MGET_CHUNK = 1000
SCAN_COUNT = 5000
RETRY = (0.2, 0.5, 1.0, 2.0)


class MirrorStatistics(msgspec.Struct, frozen=True):
    loads: int
    changes: int
    reconnects: int
    seq: int


def _glob_escape(text: bytes) -> bytes:
    return b"".join(b"\\" + bytes([c]) if c in b"*?[]\\" else bytes([c]) for c in text)


class RedisMirror:
    def __init__(
        self, url: str, *, password: str | None, prefix: str, max_lag: float, timeout: float
    ) -> None:
        self.layout = Layout(prefix)
        self._client: Any = aioredis.Redis.from_url(
            url, password=password, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        self._max_lag = max_lag
        self.mirror: Mirror | None = None
        self._profile_raw: bytes | None = None
        self._seen = Observed(reachable=False, seq=None)
        self._last_answer = time.monotonic()
        self._link_was_up: bool | None = None
        self._ahead_since: float | None = None
        self._down_since: float | None = None
        self._reload = True
        self._reconnects = 0
        self._pubsub: Any = None
        # Set when the CA's profile changed: the process exits so the supervisor starts
        # it again with the new one.
        self.profile_changed = asyncio.Event()

    # -- start --

    async def start(self, timeout: float) -> Mirror:
        """Wait for the CA's profile and a first whole copy; HankoError if Redis has
        neither within `timeout` (a responder knows nothing else of the CA)."""
        until = time.monotonic() + timeout
        why = "no answer"
        while time.monotonic() < until:
            try:
                raw = await self._client.get(self.layout.profile)
                seq = await self._client.get(self.layout.seq)
                if raw is None:
                    why = "it holds no CA profile (is hanko serve replicating to it?)"
                elif seq is None:
                    why = "it holds no status yet (being rebuilt?)"
                else:
                    self._profile_raw = raw
                    self._seen = Observed(reachable=True, seq=int(seq))
                    self.mirror = Mirror(self.layout, PROFILE.decode(raw), max_lag=self._max_lag)
                    # Subscribed before the load, which completes before the first answer.
                    self._pubsub = await self._subscribe()
                    while not self.mirror.loaded and time.monotonic() < until:
                        await self._load()
                        if not self.mirror.loaded:
                            await asyncio.sleep(0.2)
                    if self.mirror.loaded:
                        return self.mirror
                    why = "it lost its status while it was being read"
            except (RedisError, OSError) as exc:
                why = f"{type(exc).__name__}: {exc}"
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                raise HankoError(f"Redis: the CA profile does not decode: {exc}") from exc
            await asyncio.sleep(0.2)
        raise HankoError(f"Redis: no status to serve after {timeout:g} s: {why}")

    # -- run --

    async def run(self) -> None:
        """Follow Redis until cancelled."""
        await asyncio.gather(self._follow(), self._watch())

    def readiness(self) -> Readiness:
        assert self.mirror is not None  # noqa: S101 - start() made it
        seen = self._seen
        if not seen.reachable:
            seen = msgspec.structs.replace(
                seen, unreachable_for=time.monotonic() - self._last_answer
            )
        return self.mirror.readiness(seen)

    def statistics(self) -> MirrorStatistics:
        m = self.mirror
        return MirrorStatistics(
            loads=m.loads if m else 0,
            changes=m.changes if m else 0,
            reconnects=self._reconnects,
            seq=m.seq if m else -1,
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def _subscribe(self) -> Any:
        pubsub = self._client.pubsub()
        await pubsub.subscribe(self.layout.channel)
        return pubsub

    async def _follow(self) -> None:
        failures = 0
        while True:
            pubsub, self._pubsub = self._pubsub, None
            try:
                if pubsub is None:  # a new subscription: what passed meanwhile is unknown
                    pubsub = await self._subscribe()
                    self._reload = True
                while True:
                    if self._reload:
                        await self._load()
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
                    if message is not None and message.get("type") == "message":
                        await self._on_change(message["data"])
                    failures = 0
            except (RedisError, OSError) as exc:
                if failures == 0:
                    log.warning("Redis: the change subscription failed: %s", exc)
                self._reconnects += 1
                await asyncio.sleep(RETRY[min(failures, len(RETRY) - 1)])
                failures += 1
            finally:
                if pubsub is not None:
                    await pubsub.aclose()

    async def _on_change(self, data: bytes) -> None:
        mirror = self.mirror
        assert mirror is not None  # noqa: S101 - start() made it
        try:
            change = CHANGE.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError):
            log.warning("Redis: a change notification that does not decode, ignored")
            return
        if change.reload:
            self._reload = True
            return
        for i in range(0, len(change.keys), MGET_CHUNK):
            keys = change.keys[i : i + MGET_CHUNK]
            values = await self._client.mget(keys)
            mirror.apply(change.seq, zip(keys, values, strict=True))
        if not change.keys:
            mirror.apply(change.seq, ())

    async def _load(self) -> None:
        """Everything again, unless Redis holds no whole copy (then keep this one)."""
        mirror = self.mirror
        assert mirror is not None  # noqa: S101 - start() made it
        raw_seq = await self._client.get(self.layout.seq)
        if raw_seq is None:
            return  # the watcher asks again once `seq` is back
        profile = await self._client.get(self.layout.profile)
        if profile is not None and profile != self._profile_raw:
            # A new CA certificate or new paths: start again with them.
            log.warning("Redis: the CA profile changed; restarting the responder to adopt it")
            self.profile_changed.set()
            return
        items: list[tuple[bytes, bytes]] = []
        batch: list[bytes] = []
        async for key in self._client.scan_iter(
            match=_glob_escape(self.layout.prefix) + b"*", count=SCAN_COUNT
        ):
            batch.append(key)
            if len(batch) >= MGET_CHUNK:
                items.extend(await self._values(batch))
                batch = []
        if batch:
            items.extend(await self._values(batch))
        mirror.load(int(raw_seq), items)
        self._reload = False
        self._ahead_since = None

    async def _values(self, keys: list[bytes]) -> list[tuple[bytes, bytes]]:
        values = await self._client.mget(keys)
        return [(k, v) for k, v in zip(keys, values, strict=True) if v is not None]

    async def _watch(self) -> None:
        while True:
            try:
                info = await self._client.info("replication")
                raw_seq = await self._client.get(self.layout.seq)
            except (RedisError, OSError):
                self._seen = Observed(reachable=False, seq=self._seen.seq, role=self._seen.role)
            else:
                self._last_answer = time.monotonic()
                self._observe(info, int(raw_seq) if raw_seq is not None else None)
            await asyncio.sleep(POLL)

    def _observe(self, info: dict[str, Any], seq: int | None) -> None:
        mirror = self.mirror
        assert mirror is not None  # noqa: S101 - start() made it
        now = time.monotonic()
        role = str(info.get("role", "master"))
        link_up = role != "slave" or info.get("master_link_status") == "up"
        down_for = 0.0
        if not link_up:
            # Redis reports -1 for a link that never came up (a new primary named):
            # count from when this process first saw it down too.
            self._down_since = self._down_since or now
            reported = float(info.get("master_link_down_since_seconds", -1) or -1)
            down_for = max(reported, now - self._down_since)
        else:
            self._down_since = None
        if link_up and self._link_was_up is False:
            self._reload = True  # a full resync of the replica sends no notification
        self._link_was_up = link_up
        was = self._seen.seq
        if seq is not None and (was is None or seq < mirror.seq):
            self._reload = True  # a whole copy again, or a Redis rebuilt to another point
        if seq is not None and seq > mirror.seq:
            self._ahead_since = self._ahead_since or now
            if now - self._ahead_since > MISSED:
                self._reload = True
        else:
            self._ahead_since = None
        self._seen = Observed(
            reachable=True, seq=seq, role=role, link_up=link_up, link_down_for=down_for
        )
