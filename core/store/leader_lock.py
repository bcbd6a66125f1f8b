"""Which process runs the work only one may do (the OCSP refresher, the CRL updater, the
reminders, the outbox and the status replicator): the holder of the store's leader lock.

On PostgreSQL (core/store/pg_leader.py) it is a session advisory lock on a connection of
its own: it is released when that connection ends, so a process that dies (kill -9
included: the kernel closes its socket) frees it at once, and a host that vanishes frees
it once the server's keepalives give up on it (seconds: connection_kwargs sets them).
The holder checks its connection every second and steps down when it fails. On LMDB the
one process that opens the store writable is the only writer there is: it always leads.
"""

from __future__ import annotations

from typing import Protocol


class LeaderLock(Protocol):
    def try_acquire(self) -> bool:
        """Take the lock if it is free (or already ours); never waits for it."""
        ...

    def holds(self) -> bool:
        """Whether the lock is still ours (its connection alive)."""
        ...

    def release(self) -> None: ...

    def describe(self) -> str: ...


class SoleWriter:
    """LMDB: this process is the store's only writer, so it leads from the start."""

    def try_acquire(self) -> bool:
        return True

    def holds(self) -> bool:
        return True

    def release(self) -> None:
        pass

    def describe(self) -> str:
        return "the only writer of its LMDB store"
