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
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import msgspec
import trio

from core.base.errors import CtUnavailable, HankoError
from core.ct.http import Origin
from core.ct.policy import Log, eligible, required, satisfied, submission_order
from core.ct.sct import Sct, parse_answer, signed_data, verify

log = logging.getLogger("hanko.ct")
FINAL_QUEUE = 1000  # final certificates waiting for submission; more are dropped
WARN_EVERY = 10.0  # seconds between two warnings about the same log


class Entry(msgspec.Struct, frozen=True, kw_only=True):
    """A precertificate to get SCTs for."""

    serial: str  # hex, for the logs and the error
    precertificate: bytes  # DER
    tbs: bytes  # its TBSCertificate without the poison: what the logs sign
    not_before: int
    not_after: int


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
        chain: Sequence[bytes],
        issuer_key_hash: bytes,
        deadline: float,
        stagger: float,
        connections: int = 32,
    ) -> None:
        """`chain`: the issuing CA's certificate and what follows it to the root (DER),
        sent after each (pre)certificate."""
        self._logs = [_Log(lg, Origin(lg.url, limit=connections)) for lg in logs]
        self._by_url = {s.log.url: s for s in self._logs}
        self._chain = _chain_json(chain)
        self._issuer_key_hash = issuer_key_hash
        self._deadline = deadline
        self._stagger = stagger
        self._precertificates = 0
        self._satisfied = 0
        self._unavailable = 0
        self._finals_queued = 0
        self._finals_dropped = 0
        self._finals_send, self._finals_recv = trio.open_memory_channel[tuple[bytes, int]](
            FINAL_QUEUE
        )

    @property
    def logs(self) -> list[Log]:
        return [s.log for s in self._logs]

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
        """The SCTs of each entry, in order, or why there are too few; all entries are
        submitted at once and the deadline counts from now."""
        out: list[list[Sct] | CtUnavailable] = [CtUnavailable("not submitted") for _ in entries]
        deadline = trio.current_time() + self._deadline

        async def one(i: int, entry: Entry) -> None:
            out[i] = await self._collect(entry, deadline)

        async with trio.open_nursery() as nursery:
            for i, entry in enumerate(entries):
                nursery.start_soon(one, i, entry)
        return out

    async def _collect(self, entry: Entry, deadline: float) -> list[Sct] | CtUnavailable:
        self._precertificates += 1
        candidates = [self._by_url[lg.url] for lg in submission_order(self.logs, entry.not_after)]
        need = required(entry.not_after - entry.not_before)
        body = b'{"chain":["' + base64.b64encode(entry.precertificate) + b'"' + self._chain + b"]}"
        got: list[tuple[_Log, Sct]] = []
        running: set[str] = set()
        send, recv = trio.open_memory_channel[tuple[_Log, Sct | None]](len(candidates))
        with trio.move_on_at(deadline):
            async with trio.open_nursery() as nursery:

                def start() -> None:
                    target = candidates.pop(0)
                    running.add(target.log.url)
                    nursery.start_soon(self._precert_to, target, body, entry, send)

                while candidates and len(running) < need:
                    start()
                while running or candidates:
                    if not running or (len(got) + len(running) < need and candidates):
                        start()
                        continue
                    with trio.move_on_after(self._stagger) as waited:
                        target, sct = await recv.receive()
                    if waited.cancelled_caught:
                        if candidates:
                            start()
                        continue
                    running.discard(target.log.url)
                    if sct is not None:
                        got.append((target, sct))
                        if satisfied([t.log.operator for t, _ in got], need_seconds(entry)):
                            break
                nursery.cancel_scope.cancel()
        operators = [t.log.operator for t, _ in got]
        if satisfied(operators, need_seconds(entry)):
            for url in running:
                self._by_url[url].counts.abandoned += 1
            self._satisfied += 1
            return [sct for _, sct in got]
        for url in running:
            self._by_url[url].counts.timeouts += 1
            self._by_url[url].failed("no answer by the deadline")
        self._unavailable += 1
        return CtUnavailable(
            f"CT logs gave {len(got)} valid SCTs of the {need} (from at least 2 log operators)"
            f" a certificate valid this long needs, by the {self._deadline:g} s deadline;"
            f" serial {entry.serial} is a precertificate only: nothing was charged, retry later",
            serial=entry.serial,
        )

    async def _precert_to(
        self,
        target: _Log,
        body: bytes,
        entry: Entry,
        send: trio.MemorySendChannel[tuple[_Log, Sct | None]],
    ) -> None:
        sct = await self._submit(target, "/ct/v1/add-pre-chain", body)
        if sct is not None:
            try:
                verify(
                    sct,
                    target.log.key,
                    signed_data(sct, tbs=entry.tbs, issuer_key_hash=self._issuer_key_hash),
                )
            except HankoError as exc:
                target.failed(f"an SCT for serial {entry.serial} is invalid: {exc}", invalid=True)
                sct = None
            else:
                target.counts.scts += 1
        send.send_nowait((target, sct))

    async def _submit(self, target: _Log, path: str, body: bytes) -> Sct | None:
        """One submission's SCT, or None when the log failed (counted and logged)."""
        target.counts.submissions += 1
        started = trio.current_time()
        try:
            answer = await target.origin.post(path, body)
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

    # -- final certificates -------------------------------------------------------

    def submit_final(self, certificate: bytes, not_after: int) -> None:
        """Queue a final certificate for the logs marked `submit_final`; never waits (a
        full queue drops it: this submission is a courtesy, not part of issuance)."""
        if not any(s.log.submit_final for s in self._logs):
            return
        try:
            self._finals_send.send_nowait((certificate, not_after))
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
            async for certificate, not_after in self._finals_recv:
                await limit.acquire_on_behalf_of(certificate)
                nursery.start_soon(self._final, certificate, not_after, limit)

    async def _final(self, certificate: bytes, not_after: int, limit: trio.CapacityLimiter) -> None:
        try:
            body = b'{"chain":["' + base64.b64encode(certificate) + b'"' + self._chain + b"]}"
            takers = eligible([s.log for s in self._logs if s.log.submit_final], not_after)
            targets = [self._by_url[lg.url] for lg in takers]
            with trio.move_on_after(max(self._deadline, 10.0)):
                async with trio.open_nursery() as nursery:
                    for target in targets:
                        nursery.start_soon(self._submit, target, "/ct/v1/add-chain", body)
        finally:
            limit.release_on_behalf_of(certificate)

    async def aclose(self) -> None:
        for s in self._logs:
            await s.origin.aclose()


def need_seconds(entry: Entry) -> int:
    """The certificate's validity as the CT policy counts it."""
    return entry.not_after - entry.not_before
