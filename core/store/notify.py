"""Pushed events: each account's webhook, and the outbox delivery works from.

An event is written into the outbox in the same commit as what it reports (the
certificate, the revocation), so an acknowledged change always has its event and a
crash loses neither. The delivery side reads due events (`outbox_due`: next attempt
time | seq), and settles each: delivered, tried again later, or given up. A delivered
event is never sent again, across restarts. Marks (`notify_marks`) make reminders
happen once: "this certificate's 30-day reminder was queued".
"""

from __future__ import annotations

from collections.abc import Iterator

import msgspec

from core.base.errors import NotFound
from core.store.audit import AuditWrites
from core.store.txn import Txn

OUTBOX_SEQ = "outbox"


class WebhookRecord(msgspec.Struct, array_like=True, frozen=True, kw_only=True):
    account: str
    url: str
    salt: bytes  # the signing secret is derived from [notify] secret and this
    created_at: int
    created_by: str


class OutboxRecord(msgspec.Struct, array_like=True, frozen=True, kw_only=True):
    seq: int
    account: str
    type: str
    created_at: int
    body: bytes  # the JSON POSTed, exactly as signed
    attempts: int = 0
    first_attempt: int = 0
    next_at: int = 0
    delivered_at: int = 0
    given_up: bool = False
    last_error: str = ""

    @property
    def pending(self) -> bool:
        return not self.delivered_at and not self.given_up


class OutboxCounts(msgspec.Struct, frozen=True, kw_only=True):
    pending: int
    delivered: int
    given_up: int
    oldest_pending_at: int | None


_WEBHOOK = msgspec.msgpack.Decoder(WebhookRecord)
_OUTBOX = msgspec.msgpack.Decoder(OutboxRecord)
_ENCODE = msgspec.msgpack.Encoder().encode


def _seq_key(seq: int) -> bytes:
    return seq.to_bytes(8, "big")


def _due_key(at: int, seq: int) -> bytes:
    return max(at, 0).to_bytes(8, "big") + _seq_key(seq)


class NotifyReads(Txn):
    def get_webhook(self, account: str) -> WebhookRecord | None:
        raw = self.txn.get(account.encode(), db=self.dbs[b"webhooks"])
        return None if raw is None else _WEBHOOK.decode(raw)

    def get_event(self, seq: int) -> OutboxRecord | None:
        raw = self.txn.get(_seq_key(seq), db=self.dbs[b"outbox"])
        return None if raw is None else _OUTBOX.decode(raw)

    def due_events(self, now: int, *, limit: int = 100) -> list[OutboxRecord]:
        """Pending events whose next attempt is due, oldest due first."""
        out: list[OutboxRecord] = []
        for key, _ in self.txn.cursor(db=self.dbs[b"outbox_due"]):
            if int.from_bytes(key[:8], "big") > now or len(out) >= limit:
                break
            rec = self.get_event(int.from_bytes(key[8:], "big"))
            if rec is not None and rec.pending:
                out.append(rec)
        return out

    def iter_events(self) -> Iterator[OutboxRecord]:
        for _, value in self.txn.cursor(db=self.dbs[b"outbox"]):
            yield _OUTBOX.decode(value)

    def outbox_counts(self) -> OutboxCounts:
        pending = delivered = given_up = 0
        oldest: int | None = None
        for rec in self.iter_events():
            if rec.delivered_at:
                delivered += 1
            elif rec.given_up:
                given_up += 1
            else:
                pending += 1
                oldest = rec.created_at if oldest is None else min(oldest, rec.created_at)
        return OutboxCounts(
            pending=pending, delivered=delivered, given_up=given_up, oldest_pending_at=oldest
        )

    def marked(self, mark: str) -> bool:
        return self.txn.get(mark.encode(), db=self.dbs[b"notify_marks"]) is not None


class NotifyWrites(NotifyReads, AuditWrites):
    def put_webhook(self, rec: WebhookRecord, *, at_us: int, actor: str) -> None:
        self.txn.put(rec.account.encode(), _ENCODE(rec), db=self.dbs[b"webhooks"])
        self.audit(
            at_us=at_us,
            actor=actor,
            action="notify.webhook_set",
            subject=rec.account,
            detail={"url": rec.url},
        )

    def remove_webhook(self, account: str, *, at_us: int, actor: str) -> None:
        if not self.txn.delete(account.encode(), db=self.dbs[b"webhooks"]):
            raise NotFound(f"account {account!r} has no webhook")
        self.audit(
            at_us=at_us, actor=actor, action="notify.webhook_removed", subject=account, detail={}
        )

    def enqueue_event(self, account: str, kind: str, data: dict[str, object], *, at: int) -> int:
        """Queue an event for the account's webhook (none set: nothing is queued, 0)."""
        if not account or self.get_webhook(account) is None:
            return 0
        seq = self.next_counter(OUTBOX_SEQ)
        body = msgspec.json.encode(
            {
                "id": f"evt_{seq:016x}",
                "type": kind,
                "created_at": at,
                "account": account,
                "data": data,
            }
        )
        rec = OutboxRecord(
            seq=seq, account=account, type=kind, created_at=at, body=body, next_at=at
        )
        self.txn.put(_seq_key(seq), _ENCODE(rec), db=self.dbs[b"outbox"])
        self.txn.put(_due_key(at, seq), b"", db=self.dbs[b"outbox_due"])
        return seq

    def mark_once(self, mark: str) -> bool:
        """True the first time `mark` is set; False ever after."""
        return bool(self.txn.put(mark.encode(), b"", db=self.dbs[b"notify_marks"], overwrite=False))

    def settle_event(
        self, seq: int, *, now: int, delivered: bool, next_at: int | None, error: str = ""
    ) -> OutboxRecord:
        """One attempt's outcome: delivered, due again at `next_at`, or given up (None)."""
        rec = self.get_event(seq)
        if rec is None:
            raise NotFound(f"no event {seq}")
        self.txn.delete(_due_key(rec.next_at, seq), db=self.dbs[b"outbox_due"])
        settled = msgspec.structs.replace(
            rec,
            attempts=rec.attempts + 1,
            first_attempt=rec.first_attempt or now,
            delivered_at=now if delivered else 0,
            given_up=not delivered and next_at is None,
            next_at=next_at if (next_at is not None and not delivered) else rec.next_at,
            last_error="" if delivered else error[:300],
        )
        self.txn.put(_seq_key(seq), _ENCODE(settled), db=self.dbs[b"outbox"])
        if settled.pending:
            self.txn.put(_due_key(settled.next_at, seq), b"", db=self.dbs[b"outbox_due"])
        return settled

    def prune_settled(self, before: int, *, limit: int = 10_000) -> int:
        """Remove delivered and given-up events created before `before` (oldest first,
        at most `limit`): the outbox is a queue, not an archive (the audit log and the
        receivers keep what happened)."""
        pruned = 0
        cur = self.txn.cursor(db=self.dbs[b"outbox"])
        if not cur.first():
            return 0
        doomed: list[bytes] = []
        for key, value in cur:
            rec = _OUTBOX.decode(value)
            if rec.created_at >= before or len(doomed) >= limit:
                break
            if not rec.pending:
                doomed.append(key)
        for key in doomed:
            self.txn.delete(key, db=self.dbs[b"outbox"])
            pruned += 1
        return pruned
