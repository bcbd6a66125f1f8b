"""Submission to CT logs: SCTs for a batch of precertificates, and final certificates
best effort in the background.

For each precertificate the eligible logs are asked in `submission_order` (one per
operator first): as many at once as the policy needs SCTs, another whenever one fails
(an error status, no answer, an SCT that does not verify against the log's key) and
another each `stagger` while the policy is still unmet, until it is met or the deadline
passes. Once it is met the submissions still under way are abandoned: the
certificate embeds the SCTs that came, and a log's answer late by a millisecond
never holds the batch. Every SCT is checked (RFC 6962 3.2) against the log's key over
the precertificate's TBS without its poison and the issuer's key hash before it is
embedded. The precertificates of a whole request batch are submitted together, over
kept-alive connections (http.py).
"""

from __future__ import annotations

import base64
import collections
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import msgspec
import trio

from core.base.errors import CtUnavailable, HankoError
from core.ct.http import Origin, Session
from core.ct.policy import Log, eligible, submission_order
from core.ct.race import Race
from core.ct.sct import PublicKey, Sct, load_key, parse_answer, signed_data, verify
from core.dns.outbound import Outbound

log = logging.getLogger("hanko.ct")
_PRE_CHAIN = "/ct/v1/add-pre-chain"
FINAL_QUEUE = 1000  # final certificates waiting for submission; more are dropped
WARN_EVERY = 10.0  # seconds between two warnings about the same log


class Entry(msgspec.Struct, frozen=True, kw_only=True):
    """A precertificate to get SCTs for."""

    serial: str  # hex, for the logs and the error
    precertificate: bytes  # DER
    tbs: bytes  # its TBSCertificate without the poison: what the logs sign
    not_before: int
    not_after: int
    issuer: bytes = b""  # the issuing CA's key id: which chain goes with it


class IssuerChain(msgspec.Struct, frozen=True):
    """What the logs get after a (pre)certificate of one issuer, and the hash of its key
    that SCTs of its precertificates sign."""

    chain: Sequence[bytes]  # the issuing CA's certificate and what follows to the root
    key_hash: bytes


class LogStatistics(msgspec.Struct, frozen=True):
    url: str
    operator: str
    submissions: int  # precertificates and final certificates sent
    scts: int  # valid SCTs received
    failures: int  # error statuses, no answer (timeouts too), invalid SCTs
    invalid: int  # of the failures: SCTs that did not verify
    timeouts: int  # submissions still unanswered at the deadline
    abandoned: int  # unanswered when the policy was met without them
    seconds: float  # summed time of the answered submissions
    answered: int
    last_error: str | None


class SubmitterStatistics(msgspec.Struct, frozen=True):
    logs: tuple[LogStatistics, ...]
    precertificates: int  # precertificates submitted
    satisfied: int  # of them, those that got the SCTs the policy asks
    unavailable: int  # those that did not by the deadline
    finals_queued: int
    finals_dropped: int  # the queue was full


@dataclass
class _Counts:
    submissions: int = 0
    scts: int = 0
    failures: int = 0
    invalid: int = 0
    timeouts: int = 0
    abandoned: int = 0
    seconds: float = 0.0
    answered: int = 0
    last_error: str | None = None
    warned_at: float = -WARN_EVERY
    unwarned: int = 0


@dataclass
class _Log:
    log: Log
    origin: Origin
    key: PublicKey  # the log's key, loaded once
    counts: _Counts = field(default_factory=_Counts)

    def failed(self, reason: str, *, invalid: bool = False) -> None:
        c = self.counts
        c.failures += 1
        c.invalid += invalid
        c.last_error = reason
        now = time.monotonic()
        c.unwarned += 1
        if now - c.warned_at >= WARN_EVERY:
            log.warning(
                "CT log %s (%s): %s (%d failures since the last warning)",
                self.log.url,
                self.log.operator,
                reason,
                c.unwarned,
            )
            c.warned_at, c.unwarned = now, 0


def _chain_json(chain: Sequence[bytes]) -> bytes:
    return b"".join(b',"' + base64.b64encode(c) + b'"' for c in chain)


class Submitter:
    def __init__(
        self,
        logs: Sequence[Log],
        *,
        chain: Sequence[bytes] = (),
        issuer_key_hash: bytes = b"",
        issuers: Mapping[bytes, IssuerChain] | None = None,
        deadline: float,
        stagger: float,
        outbound: Outbound,
        connections: int = 32,
    ) -> None:
        """`issuers`: each issuing CA's chain by its key id; `chain` and `issuer_key_hash`:
        those of entries that name no issuer (one issuer's CA)."""
        self._logs = [
            _Log(lg, Origin(lg.url, outbound=outbound, limit=connections), load_key(lg.key))
            for lg in logs
        ]
        self._by_url = {s.log.url: s for s in self._logs}
        self.connections = connections
        self.chain = _chain_json(chain)
        self._issuer_key_hash = issuer_key_hash
        self.set_issuers(issuers or {})
        self._deadline = deadline
        self._stagger = stagger
        self._precertificates = 0
        self._satisfied = 0
        self._unavailable = 0
        self._finals_queued = 0
        self._finals_dropped = 0
        self._finals_send, self._finals_recv = trio.open_memory_channel[tuple[bytes, int, bytes]](
            FINAL_QUEUE
        )

    @property
    def logs(self) -> list[Log]:
        return [s.log for s in self._logs]

    def target(self, url: str) -> _Log:
        return self._by_url[url]

    def statistics(self) -> SubmitterStatistics:
        return SubmitterStatistics(
            logs=tuple(
                LogStatistics(
                    url=s.log.url,
                    operator=s.log.operator,
                    submissions=s.counts.submissions,
                    scts=s.counts.scts,
                    failures=s.counts.failures,
                    invalid=s.counts.invalid,
                    timeouts=s.counts.timeouts,
                    abandoned=s.counts.abandoned,
                    seconds=s.counts.seconds,
                    answered=s.counts.answered,
                    last_error=s.counts.last_error,
                )
                for s in self._logs
            ),
            precertificates=self._precertificates,
            satisfied=self._satisfied,
            unavailable=self._unavailable,
            finals_queued=self._finals_queued,
            finals_dropped=self._finals_dropped,
        )

    # -- precertificates ----------------------------------------------------------

    async def scts_for(self, entries: Sequence[Entry]) -> list[list[Sct] | CtUnavailable]:
        """The SCTs of each entry, in order, or why there are too few. The whole batch
        is submitted at once, each log's share over its kept-alive connections, and
        the deadline counts from now."""
        batch = _Batch(self, entries)
        with trio.move_on_at(trio.current_time() + self._deadline):
            async with trio.open_nursery() as nursery:
                batch.nursery = nursery
                for k, race in enumerate(batch.races):
                    batch.launch(k, race.begin())
                nursery.start_soon(batch.stagger, self._stagger)
                await batch.all_done.wait()
                nursery.cancel_scope.cancel()
        races = zip(entries, batch.races, strict=True)
        return [self._outcome(entry, race) for entry, race in races]

    def _outcome(self, entry: Entry, race: Race) -> list[Sct] | CtUnavailable:
        self._precertificates += 1
        if race.satisfied:
            for url in race.running:
                self._by_url[url].counts.abandoned += 1
            self._satisfied += 1
            return [sct for _, sct in race.got]
        for url in race.running:
            self._by_url[url].counts.timeouts += 1
            self._by_url[url].failed("no answer by the deadline")
        self._unavailable += 1
        return CtUnavailable(
            f"CT logs gave {len(race.got)} valid SCTs of the {race.need} (from at least 2"
            " log operators) a certificate valid this long needs, by the"
            f" {self._deadline:g} s deadline; serial {entry.serial} is a precertificate"
            " only: nothing was charged, retry later",
            serial=entry.serial,
        )

    async def submit(self, target: _Log, session: Session, path: str, body: bytes) -> Sct | None:
        """One submission's SCT, or None when the log failed (counted and logged)."""
        target.counts.submissions += 1
        started = trio.current_time()
        try:
            answer = await session.post(path, body)
        except HankoError as exc:
            target.failed(exc.message)
            return None
        target.counts.answered += 1
        target.counts.seconds += trio.current_time() - started
        if answer.status != 200:
            detail = answer.body[:200].decode("utf-8", "replace")
            target.failed(f"{path} answered {answer.status}: {detail}")
            return None
        try:
            return parse_answer(answer.body)
        except HankoError as exc:
            target.failed(f"{path}: {exc.message}", invalid=True)
            return None

    def check(self, target: _Log, entry: Entry, sct: Sct) -> str | None:
        """Why `sct` is not the log's valid SCT for `entry`, or None."""
        try:
            verify(
                sct,
                target.log.key,
                signed_data(sct, tbs=entry.tbs, issuer_key_hash=self.chain_of(entry.issuer)[1]),
                key=target.key,
            )
        except HankoError as exc:
            return f"an SCT for serial {entry.serial} is invalid: {exc}"
        return None

    def set_issuers(self, issuers: Mapping[bytes, IssuerChain]) -> None:
        """Each issuing CA's chain from now on (a reload added one)."""
        self._issuers = {k: (_chain_json(v.chain), v.key_hash) for k, v in issuers.items()}

    def chain_of(self, issuer: bytes) -> tuple[bytes, bytes]:
        """(the JSON tail of the chain, the issuer key hash) for an issuer's entries."""
        return self._issuers.get(issuer) or (self.chain, self._issuer_key_hash)

    # -- final certificates -------------------------------------------------------

    def submit_final(self, certificate: bytes, not_after: int, issuer: bytes = b"") -> None:
        """Queue a final certificate for the logs marked `submit_final`; never waits (a
        full queue drops it: this submission is a courtesy, not part of issuance)."""
        if not any(s.log.submit_final for s in self._logs):
            return
        try:
            self._finals_send.send_nowait((certificate, not_after, issuer))
        except trio.WouldBlock:
            self._finals_dropped += 1
        else:
            self._finals_queued += 1

    async def run(
        self,
        *,
        concurrency: int = 16,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Submit queued final certificates until cancelled."""
        limit = trio.CapacityLimiter(concurrency)
        task_status.started()
        async with trio.open_nursery() as nursery:
            async for certificate, not_after, issuer in self._finals_recv:
                token = object()  # the limiter's borrower: one per submission
                await limit.acquire_on_behalf_of(token)
                nursery.start_soon(self._final, certificate, not_after, issuer, limit, token)

    async def _final(
        self,
        certificate: bytes,
        not_after: int,
        issuer: bytes,
        limit: trio.CapacityLimiter,
        token: object,
    ) -> None:
        try:
            chain = self.chain_of(issuer)[0]
            body = b'{"chain":["' + base64.b64encode(certificate) + b'"' + chain + b"]}"
            takers = eligible([s.log for s in self._logs if s.log.submit_final], not_after)
            targets = [self._by_url[lg.url] for lg in takers]
            with trio.move_on_after(max(self._deadline, 10.0)):
                async with trio.open_nursery() as nursery:
                    for target in targets:
                        nursery.start_soon(self._final_to, target, body)
        finally:
            limit.release_on_behalf_of(token)

    async def _final_to(self, target: _Log, body: bytes) -> None:
        async with target.origin.session() as session:
            await self.submit(target, session, "/ct/v1/add-chain", body)

    async def aclose(self) -> None:
        for s in self._logs:
            await s.origin.aclose()


class _Batch:
    """The races of one batch of precertificates and, per log, the queue of those to
    send to it, drained by a few workers (one connection each) that exit when it is
    empty; a race that ended meanwhile is skipped, not sent."""

    def __init__(self, submitter: Submitter, entries: Sequence[Entry]) -> None:
        self._s = submitter
        self.entries = entries
        self.races = [
            Race(submission_order(submitter.logs, e.not_after), e.not_after - e.not_before)
            for e in entries
        ]
        self.bodies = [
            b'{"chain":["'
            + base64.b64encode(e.precertificate)
            + b'"'
            + submitter.chain_of(e.issuer)[0]
            + b"]}"
            for e in entries
        ]
        self._queues: dict[str, collections.deque[int]] = {}
        self._workers: dict[str, int] = {}
        self._settled = [r.done for r in self.races]
        self._left = self._settled.count(False)
        self.all_done = trio.Event()
        if not self._left:
            self.all_done.set()
        self.nursery: trio.Nursery | None = None

    def launch(self, k: int, logs: list[Log]) -> None:
        for log in logs:
            queue = self._queues.setdefault(log.url, collections.deque())
            queue.append(k)
            busy = self._workers.get(log.url, 0)
            if busy < min(self._s.connections, len(queue)) and self.nursery is not None:
                self._workers[log.url] = busy + 1
                self.nursery.start_soon(self._worker, log.url)
        self._settle(k)

    def _settle(self, k: int) -> None:
        if self.races[k].done and not self._settled[k]:
            self._settled[k] = True
            self._left -= 1
            if not self._left:
                self.all_done.set()

    async def _worker(self, url: str) -> None:
        target = self._s.target(url)
        queue = self._queues[url]
        try:
            async with target.origin.session() as session:
                while queue:
                    k = queue.popleft()
                    race = self.races[k]
                    if race.done:
                        race.running.pop(url, None)
                        continue
                    sct = await self._s.submit(target, session, _PRE_CHAIN, self.bodies[k])
                    if race.done:  # over while this one was answering
                        target.counts.abandoned += 1
                        race.running.pop(url, None)
                        continue
                    if sct is not None:
                        # Checked here, not in a worker thread: measured, the thread
                        # saved nothing for a batch of 100 and cost 40% more for one.
                        error = self._s.check(target, self.entries[k], sct)
                        if error is None:
                            target.counts.scts += 1
                        else:
                            target.failed(error, invalid=True)
                            sct = None
                    self.launch(k, race.answered(target.log, sct))
        finally:
            self._workers[url] -= 1

    async def stagger(self, every: float) -> None:
        while True:
            await trio.sleep(every)
            for k, race in enumerate(self.races):
                if not race.done:
                    self.launch(k, race.stagger())
