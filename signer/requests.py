"""What the signer pool queues and hands to workers: requests (a run of messages for one
key and algorithm, for one caller), the caller's completion, and batches."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

import msgspec
import outcome
import trio

from core.base.errors import SignerError
from signer.api import Priority


class Waiter:
    """Completion of a `sign_many` or `sign_digest` caller's messages, and their results
    in order: a signature, or the SignerError of that message."""

    __slots__ = ("event", "out", "remaining")

    def __init__(self, count: int) -> None:
        self.remaining = count
        self.out: list[bytes | SignerError] = [b""] * count
        self.event = trio.Event()

    def done(self, count: int) -> None:
        self.remaining -= count
        if self.remaining == 0:
            self.event.set()


class Request(msgspec.Struct, eq=False):
    """Messages `messages[lo:hi]`, all to be signed with one key and algorithm, for one
    caller. A `sign` caller has one message and is woken directly through its task (the
    hot path: no Event, no ParkingLot). A `sign_many` run is one request however long:
    one request per message (two per refreshed certificate) cost the core about 1 us
    per signature to build, queue and settle. A batch that has
    room for part of a run takes that part (`split`); the rest stays at the head of its
    queue.

    A Struct rather than a slotted class: built in a sixth of the time. `eq=False`:
    requests are distinct even when their fields are equal."""

    label: str
    alg: int
    messages: list[bytes]  # shared by a `sign_many` caller's requests
    lo: int
    hi: int
    priority: Priority
    waiter: Waiter | None  # None: a single `sign` caller, woken through `task`
    task: trio.lowlevel.Task | None = None
    attempts: int = 0

    @property
    def count(self) -> int:
        return self.hi - self.lo

    @property
    def abandoned(self) -> bool:
        """A single caller that was cancelled: nobody is waiting for this any more."""
        return self.waiter is None and self.task is None

    def split(self, count: int) -> Request:
        """Keep the first `count` messages; return the rest as a request of their own."""
        at = self.lo + count
        rest = Request(
            self.label,
            self.alg,
            self.messages,
            at,
            self.hi,
            self.priority,
            self.waiter,
            attempts=self.attempts,
        )
        self.hi = at
        return rest

    def settle(self, signatures: list[bytes], pos: int, errors: dict[int, str]) -> int:
        """Deliver this request's results, found from `pos` in a batch's `signatures`
        (`errors` by batch index). Returns how many of them failed."""
        n = self.count
        mine = {i - pos: errors[i] for i in range(pos, pos + n) if i in errors} if errors else {}
        waiter = self.waiter
        if waiter is None:
            self._wake(
                outcome.Error(SignerError(mine[0])) if mine else outcome.Value(signatures[pos])
            )
        else:
            out = waiter.out
            out[self.lo : self.hi] = signatures[pos : pos + n]
            for i, reason in mine.items():
                out[self.lo + i] = SignerError(reason)
            waiter.done(n)
        return len(mine)

    def fail(self, error: SignerError) -> None:
        waiter = self.waiter
        if waiter is None:
            self._wake(outcome.Error(error))
            return
        waiter.out[self.lo : self.hi] = [error] * self.count
        waiter.done(self.count)

    def _wake(self, result: outcome.Outcome[bytes]) -> None:
        if self.task is not None:
            trio.lowlevel.reschedule(self.task, result)
            self.task = None


class SpaceWaiter:
    """A caller waiting for room in the queue for `need` requests."""

    __slots__ = ("event", "need")

    def __init__(self, need: int) -> None:
        self.need = need
        self.event = trio.Event()


class Batch:
    __slots__ = ("done", "id", "requests")

    def __init__(self, batch_id: int, requests: list[Request]) -> None:
        self.id = batch_id
        self.requests = requests
        self.done = trio.Event()


def take(queues: Sequence[deque[Request]], limit: int) -> tuple[list[Request], int]:
    """Up to `limit` messages from the queues, highest priority first: the requests
    taken, and how many queued messages left the queues (abandoned ones included). A
    request with more than fits is split; its rest stays first in line."""
    taken: list[Request] = []
    n = removed = 0
    for q in queues:
        while q and n < limit:
            r = q.popleft()
            k = r.count
            if r.abandoned:
                removed += k
                continue
            if k > limit - n:
                q.appendleft(r.split(limit - n))
                k = limit - n
            removed += k
            n += k
            taken.append(r)
        if n == limit:
            break
    return taken, removed
