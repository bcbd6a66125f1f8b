"""The primary's side of corroboration: a batch of checks the primary has decided is
sent to every remote perspective at once, over mutual TLS, under one deadline, as a
new attempt (a fresh id every time, retries included); each perspective's results are
judged per check by the BR quorum (core/mpic/quorum.py).

Every perspective is waited for up to the deadline, so each one's result is logged
(BR 5.4.1); one that is down, refuses, answers late or answers something else than
what was asked counts as not corroborating. The links are authenticated both ways:
the client presents a certificate from the internal TLS CA and accepts only a
perspective whose certificate comes from it and names the host of its URL.
"""

from __future__ import annotations

import logging
import math
import secrets
import ssl
from collections.abc import Callable, Sequence

import msgspec
import trio

from core.base.errors import CorroborationUnavailable, HankoError, NotCorroborated
from core.mpic.link import Link, LinkError
from core.mpic.messages import MAX_CHECKS, PATH, Check, CheckRequest, decode_reply, encode
from core.mpic.quorum import REQUIRED_RIRS, Answer, Verdict, allowed_failures, judge

log = logging.getLogger("hanko.mpic")
MAX_REPLY = 1 << 20  # a thousand results with their details fit well under this
PROBE_EVERY = 10.0  # seconds between the readiness probes of each perspective


class Perspective(msgspec.Struct, frozen=True, kw_only=True):
    url: str  # https://HOST:PORT
    code: str
    rir: str


class PerspectiveStatistics(msgspec.Struct, frozen=True, kw_only=True):
    code: str
    rir: str
    reachable: bool  # its last answer or probe came back
    answers: int  # results received (one per check)
    disagreements: int  # results that did not corroborate
    unreachable: int  # requests with no usable answer (down, refused, late, malformed)
    requests: int
    seconds: float  # summed over the requests answered


class MpicStatistics(msgspec.Struct, frozen=True, kw_only=True):
    attempts: int
    checks: int
    corroborated: int
    refused: int
    perspectives: tuple[PerspectiveStatistics, ...]


class _Ask:
    """One call of `corroborate` while the queues run: the perspectives' answers as
    they come, and when all have."""

    __slots__ = ("answers", "attempt", "checks", "closed", "done", "identities", "waiting")

    def __init__(self, checks: list[Check], identities: tuple[str, ...], waiting: int) -> None:
        self.checks = checks
        self.identities = identities
        self.attempt = secrets.token_urlsafe(12)  # the log's name for it
        self.answers: dict[str, list[Answer]] = {}
        self.waiting = waiting
        self.closed = False
        self.done = trio.Event()


class _Counts:
    __slots__ = ("answers", "disagreements", "reachable", "requests", "seconds", "unreachable")

    def __init__(self) -> None:
        self.reachable = True
        self.answers = self.disagreements = self.unreachable = self.requests = 0
        self.seconds = 0.0


def client_context(*, ca_file: str, cert_file: str, key_file: str) -> ssl.SSLContext:
    """TLS 1.2+ trusting only the internal TLS CA, presenting the primary's client
    certificate from it."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(cert_file, key_file)
    except (OSError, ssl.SSLError) as exc:
        raise HankoError(
            f"mpic: cannot load the client certificate {cert_file} or its key: {exc}",
            code="tls_files",
        ) from None
    return ctx


class Corroborator:
    def __init__(
        self,
        perspectives: Sequence[Perspective],
        *,
        required: Callable[[], int],
        timeout: float,
        tls: ssl.SSLContext,
    ) -> None:
        if not perspectives:
            raise ValueError("corroboration needs remote perspectives")
        self._perspectives = tuple(perspectives)
        self._required = required
        self._timeout = timeout
        self._links = {p.code: Link(p.url, tls) for p in self._perspectives}
        self._counts = {p.code: _Counts() for p in self._perspectives}
        self._queues = {
            p.code: trio.open_memory_channel[_Ask](math.inf) for p in self._perspectives
        }
        self._coalescing = False
        self._attempts = self._checks = self._corroborated = self._refused = 0

    async def corroborate(
        self, checks: Sequence[Check], *, caa_identities: Sequence[str] = ()
    ) -> list[Verdict]:
        """One verdict per check, in order. While `run` runs, each perspective has a
        queue: asks made while its request is under way go together in its next one
        (an idle perspective is asked at once), and one slow perspective delays none
        of the others; each ask is judged at its own deadline."""
        if not self._coalescing:
            return await self._round(list(checks), tuple(caa_identities))
        ask = _Ask(list(checks), tuple(caa_identities), len(self._perspectives))
        for queue, _ in self._queues.values():
            queue.send_nowait(ask)
        with trio.move_on_after(self._timeout):
            await ask.done.wait()
        ask.closed = True  # what comes later is not waited for
        return self._judged(ask.checks, dict(ask.answers), ask.attempt)

    async def _pipeline(self, p: Perspective) -> None:
        """One perspective's requests, one at a time: every ask queued goes in."""
        _, queued = self._queues[p.code]
        carry: _Ask | None = None  # taken, but for the next request (other identities, or full)
        while True:
            first = carry if carry is not None else await queued.receive()
            batch, n, carry = [first], len(first.checks), None
            while True:
                try:
                    ask = queued.receive_nowait()
                except trio.WouldBlock:
                    break
                if ask.identities != first.identities or n + len(ask.checks) > MAX_CHECKS:
                    carry = ask
                    break
                batch.append(ask)
                n += len(ask.checks)
            batch = [a for a in batch if not a.closed]
            if not batch:
                continue
            checks = [c for a in batch for c in a.checks]
            attempt = secrets.token_urlsafe(24)
            body = encode(
                CheckRequest(attempt=attempt, checks=checks, caa_identities=list(first.identities))
            )
            got: dict[str, list[Answer]] = {}
            with trio.move_on_after(self._timeout):
                await self._ask(p, body, attempt, len(checks), got)
            if p.code not in got:
                self._unreachable(p, got, len(checks), f"no answer within {self._timeout:g} s")
            start = 0
            for a in batch:
                a.answers[p.code] = got[p.code][start : start + len(a.checks)]
                start += len(a.checks)
                a.waiting -= 1
                if a.waiting == 0:
                    a.done.set()

    async def _round(self, checks: list[Check], caa_identities: tuple[str, ...]) -> list[Verdict]:
        """Every perspective asked at once, in one request each (no queues running)."""
        attempt = secrets.token_urlsafe(24)
        request = CheckRequest(
            attempt=attempt, checks=list(checks), caa_identities=list(caa_identities)
        )
        body = encode(request)
        got: dict[str, list[Answer]] = {}
        with trio.move_on_after(self._timeout):
            async with trio.open_nursery() as nursery:
                for p in self._perspectives:
                    nursery.start_soon(self._ask, p, body, attempt, len(checks), got)
        return self._judged(checks, got, attempt)

    def _judged(
        self, checks: list[Check], got: dict[str, list[Answer]], attempt: str
    ) -> list[Verdict]:
        """The quorum of each check over every perspective (one that did not answer in
        time does not corroborate), counted and logged."""
        late = f"no answer within {self._timeout:g} s"
        for p in self._perspectives:
            if p.code not in got:
                got[p.code] = [
                    Answer(code=p.code, rir=p.rir, corroborates=False, detail=late, reachable=False)
                ] * len(checks)
        required = self._required()
        verdicts = [
            judge([got[p.code][i] for p in self._perspectives], required=required)
            for i in range(len(checks))
        ]
        self._attempts += 1
        self._checks += len(checks)
        for check, v in zip(checks, verdicts, strict=True):
            self._corroborated += v.corroborated
            self._refused += not v.corroborated
            log.info(
                "mpic %s %s %s: %s",
                check.kind,
                check.name,
                "corroborated" if v.corroborated else "refused",
                v.reason,
                extra={
                    "event": "mpic.corroboration",
                    "attempt": attempt,
                    "quorum": v.quorum,
                    "passed": " ".join(v.passed),
                    "failed": "; ".join(f"{k}: {t}" for k, t in v.why.items()),
                },
            )
        return verdicts

    async def _ask(
        self, p: Perspective, body: bytes, attempt: str, n: int, got: dict[str, list[Answer]]
    ) -> None:
        counts = self._counts[p.code]
        counts.requests += 1
        started = trio.current_time()
        try:
            status, raw = await self._links[p.code].request("POST", PATH, body, MAX_REPLY)
            if status != 200:
                raise LinkError(f"answered HTTP {status}")
            reply = decode_reply(raw)
            if reply.attempt != attempt or reply.perspective != p.code or len(reply.results) != n:
                raise LinkError("answered for another attempt or perspective")
        except LinkError as exc:
            self._unreachable(p, got, n, str(exc))
            return
        except (msgspec.DecodeError, msgspec.ValidationError):
            self._unreachable(p, got, n, "answered something that is not a reply")
            return
        counts.seconds += trio.current_time() - started
        counts.reachable = True
        counts.answers += n
        counts.disagreements += sum(not r.ok for r in reply.results)
        got[p.code] = [
            Answer(code=p.code, rir=p.rir, corroborates=r.ok, detail=r.detail)
            for r in reply.results
        ]

    def _unreachable(
        self, p: Perspective, got: dict[str, list[Answer]], n: int, detail: str
    ) -> None:
        self._counts[p.code].unreachable += 1
        self._counts[p.code].reachable = False
        answer = Answer(code=p.code, rir=p.rir, corroborates=False, detail=detail, reachable=False)
        got[p.code] = [answer] * n

    async def probe(self) -> None:
        """Ask each perspective's /readyz once (all at once, under the deadline)."""

        async def one(p: Perspective) -> None:
            try:
                status, _ = await self._links[p.code].request("GET", "/readyz", b"", 4096)
                self._counts[p.code].reachable = status == 200
            except LinkError:
                self._counts[p.code].reachable = False

        with trio.move_on_after(self._timeout):
            async with trio.open_nursery() as nursery:
                for p in self._perspectives:
                    nursery.start_soon(one, p)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Each perspective's queue of asks, and a probe of every perspective every
        PROBE_EVERY seconds (for /readyz); the links close with it."""
        try:
            async with trio.open_nursery() as nursery:
                for p in self._perspectives:
                    nursery.start_soon(self._pipeline, p)
                self._coalescing = True
                await self.probe()
                task_status.started()
                while True:
                    await trio.sleep(PROBE_EVERY)
                    await self.probe()
        finally:
            self._coalescing = False
            for _, queued in self._queues.values():  # waiting asks: judged on what came
                while True:
                    try:
                        queued.receive_nowait().done.set()
                    except trio.WouldBlock:
                        break
            with trio.CancelScope(shield=True):
                await self.aclose()

    async def aclose(self) -> None:
        for link in self._links.values():
            await link.aclose()

    def readiness(self) -> str | None:
        """None when enough perspectives are reachable to meet the quorum the BR
        require today; else why not."""
        n = len(self._perspectives)
        required = self._required()
        if n < required:
            return f"{n} remote perspectives configured, the BR require {required}"
        up = [p for p in self._perspectives if self._counts[p.code].reachable]
        need = n - allowed_failures(n)
        if len(up) < need:
            return (
                f"{len(up)} of {n} remote perspectives reachable"
                f" ({', '.join(p.code for p in up) or 'none'}), the quorum needs {need}"
            )
        if len({p.rir for p in up}) < REQUIRED_RIRS:
            return f"the reachable remote perspectives span fewer than {REQUIRED_RIRS} RIRs"
        return None

    def statistics(self) -> MpicStatistics:
        return MpicStatistics(
            attempts=self._attempts,
            checks=self._checks,
            corroborated=self._corroborated,
            refused=self._refused,
            perspectives=tuple(
                PerspectiveStatistics(
                    code=p.code,
                    rir=p.rir,
                    reachable=c.reachable,
                    answers=c.answers,
                    disagreements=c.disagreements,
                    unreachable=c.unreachable,
                    requests=c.requests,
                    seconds=c.seconds,
                )
                for p in self._perspectives
                for c in (self._counts[p.code],)
            ),
        )


def refusal(verdict: Verdict, subject: str) -> HankoError:
    """The error for a verdict that did not corroborate: retryable when only
    unanswered perspectives made it fail, else a refusal naming who disagreed."""
    if verdict.unanswered:
        return CorroborationUnavailable(
            f"{subject}: could not be corroborated now ({verdict.reason}); try again later",
            quorum=verdict.quorum,
            failed=verdict.why,
        )
    return NotCorroborated(
        subject, f"not corroborated: {verdict.reason}", quorum=verdict.quorum, failed=verdict.why
    )
