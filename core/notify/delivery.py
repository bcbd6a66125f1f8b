"""Delivery of the outbox to webhooks: at least once, in the background of `hanko
serve`, never in the way of issuance.

Each due event is POSTed as its stored JSON body with `Hanko-Signature` (signing.py)
and `Hanko-Event-Id`; a 2xx answer settles it as delivered, anything else (a status,
a timeout, a refused connection) schedules the next attempt by `[notify]
retry_schedule` or, past it, gives it up. The receiver's name is resolved at each
attempt, every address checked by the outbound address policy (core/dns/outbound.py),
and the POST sent to an address that was checked (the Host header and TLS server name
stay the URL's): a name that points inside the network, then or at any later lookup,
is never connected to. Redirects are not followed; the answer's body is not read.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Sequence
from urllib.parse import urlsplit

import httpx
import msgspec
import trio

from core.base.clock import Clock, to_epoch
from core.base.errors import HankoError
from core.dns.outbound import checked_addresses
from core.dns.resolver import Resolver
from core.notify import retry, signing, targets
from core.store import GroupCommitWriter, Store, WriteTxn
from core.store.notify import OutboxRecord

log = logging.getLogger("hanko.notify")
BATCH = 50
NO_WEBHOOK = "the account has no webhook any more"
CONCURRENCY = 8


def webhook_secret(master: bytes, account: str, salt: bytes) -> bytes:
    """The signing secret of an account's webhook: derived, never stored."""
    return hmac.new(
        master, b"hanko webhook\0" + account.encode() + b"\0" + salt, hashlib.sha256
    ).digest()


def secret_text(secret: bytes) -> str:
    return "whsec_" + secret.hex()


class NotifierStatistics(msgspec.Struct, frozen=True):
    attempts: int
    delivered: int
    failed_attempts: int
    given_up: int
    last_error: str | None


class Notifier:
    def __init__(
        self,
        *,
        store: Store,
        writer: GroupCommitWriter,
        clock: Clock,
        master: bytes,
        schedule: Sequence[int],
        timeout: float,
        allow_private: bool,
        resolver: Resolver,
        poll: float = 1.0,
    ) -> None:
        self._resolver = resolver
        self._store = store
        self._writer = writer
        self._clock = clock
        self._master = master
        self._schedule = list(schedule)
        self._timeout = timeout
        self._allow_private = allow_private
        self._poll = poll
        self._attempts = self._delivered = self._failed = self._given_up = 0
        self._last_error: str | None = None

    def statistics(self) -> NotifierStatistics:
        return NotifierStatistics(
            attempts=self._attempts,
            delivered=self._delivered,
            failed_attempts=self._failed,
            given_up=self._given_up,
            last_error=self._last_error,
        )

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        async with httpx.AsyncClient(timeout=self._timeout, follow_redirects=False) as client:
            while True:
                await self.deliver_due(client)
                await trio.sleep(self._poll)

    async def deliver_due(self, client: httpx.AsyncClient) -> int:
        now = to_epoch(self._clock.now())
        with self._store.read() as txn:
            due = txn.due_events(now, limit=BATCH)
        limit = trio.CapacityLimiter(CONCURRENCY)
        async with trio.open_nursery() as nursery:
            for rec in due:
                nursery.start_soon(self._one, client, rec, limit)
        return len(due)

    async def _one(
        self, client: httpx.AsyncClient, rec: OutboxRecord, limit: trio.CapacityLimiter
    ) -> None:
        async with limit:
            error = await self._post(client, rec)
        now = to_epoch(self._clock.now())
        self._attempts += 1
        next_at = None
        if error is not None:
            self._failed += 1
            self._last_error = f"event {rec.seq} to {rec.account}: {error}"
            next_at = (
                None  # no receiver to try again: given up at once
                if error == NO_WEBHOOK
                else retry.next_attempt(rec.first_attempt or now, rec.attempts + 1, self._schedule)
            )
            log.warning(
                "webhook delivery failed: %s",
                error,
                extra={
                    "event": "notify.failed",
                    "account": rec.account,
                    "event_seq": rec.seq,
                    "attempt": rec.attempts + 1,
                },
            )

        def op(txn: WriteTxn) -> OutboxRecord:
            return txn.settle_event(
                rec.seq, now=now, delivered=error is None, next_at=next_at, error=error or ""
            )

        try:
            settled = await self._writer.submit(op)
        except HankoError as exc:  # a full store: the event stays due and is tried again
            self._last_error = exc.message
            return
        if settled.delivered_at:
            self._delivered += 1
        elif settled.given_up:
            self._given_up += 1
            log.error(
                "webhook event given up after %d attempts",
                settled.attempts,
                extra={"event": "notify.given_up", "account": rec.account, "event_seq": rec.seq},
            )

    async def _post(self, client: httpx.AsyncClient, rec: OutboxRecord) -> str | None:
        """None when the receiver took the event; else why not."""
        with self._store.read() as txn:
            hook = txn.get_webhook(rec.account)
        if hook is None:
            return NO_WEBHOOK
        secret = webhook_secret(self._master, hook.account, hook.salt)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "hanko-webhook/1",
            "Hanko-Event-Id": f"evt_{rec.seq:016x}",
            signing.HEADER: signing.signature(secret, rec.body, to_epoch(self._clock.now())),
        }
        return await post_event(
            client,
            self._resolver,
            hook.url,
            rec.body,
            headers,
            allow_private=self._allow_private,
            timeout=self._timeout,
        )


async def post_event(
    client: httpx.AsyncClient,
    resolver: Resolver,
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    allow_private: bool,
    timeout: float,
) -> str | None:
    """POST `body` to a webhook URL: its host resolved once, checked by the outbound
    address policy, and connected to as checked. None when the receiver took it (2xx);
    else why not, naming the URL but never an address the CA's resolver returned."""
    try:
        targets.check_url(url, allow_private=allow_private)
        parts = urlsplit(url)
        host = parts.hostname or ""
        addresses = await checked_addresses(resolver, host, allow_private=allow_private)
    except HankoError as exc:
        return exc.message
    pinned = parts._replace(netloc=_netloc(addresses[0], parts.port)).geturl()
    try:
        with trio.fail_after(timeout + 1):
            request = client.build_request(
                "POST",
                pinned,
                content=body,
                headers={"Host": parts.netloc.rpartition("@")[2], **headers},
                # TLS: the server name and the certificate check stay the URL's host.
                extensions={"sni_hostname": host},
            )
            r = await client.send(request, stream=True)
            await r.aclose()  # the status is the answer; the body is not read
    except (httpx.HTTPError, trio.TooSlowError, OSError) as exc:
        return f"{exc.__class__.__name__} posting to {url}"
    if 200 <= r.status_code < 300:
        return None
    return f"{url} answered {r.status_code}"


def _netloc(address: str, port: int | None) -> str:
    host = f"[{address}]" if ":" in address else address
    return host if port is None else f"{host}:{port}"
