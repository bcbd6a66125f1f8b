"""What `/readyz` checks on `hanko serve`: the store takes writes, the signer answers
(a probe signature within a deadline, not only that its processes exist: a worker that
hangs, or is stopped, must take the service out of rotation), and every status
responder is up."""

from __future__ import annotations

import trio

from core.base.errors import SignerError
from core.store import GroupCommitWriter
from ocsp.status.supervisor import ResponderProcesses
from signer.algorithms import SignAlgorithm
from signer.api import Priority
from signer.pool import SignerPool

PROBE = b"hanko readiness probe: not a certificate, a CRL or an OCSP response"


class SignerProbe:
    """One probe signature at a time, its success remembered for `fresh` seconds
    (load balancers ask often; a signature each time would cost the signer)."""

    def __init__(
        self,
        pool: SignerPool,
        label: str,
        algorithm: SignAlgorithm,
        *,
        deadline: float = 2.0,
        fresh: float = 1.0,
    ) -> None:
        self._pool = pool
        self._label = label
        self._alg = algorithm
        self._deadline = deadline
        self._fresh = fresh
        self._last_ok = -fresh
        self._lock = trio.Lock()

    async def answers(self) -> bool:
        async with self._lock:
            if trio.current_time() - self._last_ok < self._fresh:
                return True
            with trio.move_on_after(self._deadline):
                try:
                    [signed] = await self._pool.sign_many(
                        [(self._label, self._alg, PROBE)],
                        priority=Priority.INTERACTIVE,
                        wait=False,
                    )
                except SignerError:  # a full queue: not ready for more work either
                    return False
                if isinstance(signed, bytes):
                    self._last_ok = trio.current_time()
                    return True
            return False


async def readiness(
    writer: GroupCommitWriter, probe: SignerProbe, responders: ResponderProcesses | None
) -> dict[str, bool]:
    checks = {
        "store_writable": not writer.statistics().full,
        "signer": await probe.answers(),
    }
    if responders is not None:
        stats = responders.statistics()
        checks["status_responders"] = stats.alive == stats.processes
    return checks
