"""What every store back end is to the rest of hanko: transactions over the domain
modules (ReadTxn, WriteTxn), group commits, the responder's read-only view and a few
figures. LMDB (core/store/environment.py) is the embedded default and the fast path;
PostgreSQL (core/store/pg_store.py) is for several hosts on one store of record."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from core.store.leader_lock import LeaderLock
from core.store.search import CertPage, CertQuery
from core.store.transactions import Done, Failed, ReadTxn, WriteTxn

T = TypeVar("T")


class StatusView(Protocol):
    """What an OCSP responder process reads (core/store/ocsp_view.py, pg_view.py); keys
    are store keys (keys.serial_key)."""

    def renew(self) -> None:
        """Read the store as it is now."""
        ...

    def close(self) -> None: ...

    def response(self, key: bytes) -> bytes | None: ...

    def issued(self, key: bytes) -> bool: ...

    def envelope(self, key_hash: bytes) -> bytes | None: ...

    def status_generation(self) -> bytes | None: ...

    def envelope_generation(self) -> bytes | None: ...


class Store(Protocol):
    backend: str  # "lmdb" or "postgresql"
    # Reads wait on a network: callers on an event loop run them in a worker thread.
    remote: bool
    readonly: bool

    @property
    def full(self) -> bool:
        """Writes are refused until an operator acts (LMDB: the map at its maximum)."""
        ...

    def read(self) -> ReadTxn:
        """A consistent snapshot; close it (a with block) to release it."""
        ...

    def write(self, op: Callable[[WriteTxn], T]) -> T:
        """`op` in one durable commit of its own (the CLI, bootstrap)."""
        ...

    def commit_group(self, ops: list[Callable[[WriteTxn], Any]]) -> list[Done[Any] | Failed]:
        """Many ops in one durable commit, each rolled back alone if it raises."""
        ...

    def leader_lock(self) -> LeaderLock:
        """What decides which process runs the work only one may do."""
        ...

    def ocsp_view(self) -> StatusView:
        """The view the OCSP responder answers from."""
        ...

    def stat(self) -> dict[str, int]:
        """Entries per table."""
        ...

    def map_use(self) -> dict[str, int]:
        """Bytes used, reserved and at most (metrics)."""
        ...

    def search_certs(self, query: CertQuery, now: int) -> CertPage:
        """One page of the certificates matching `query` (core/store/search.py), in
        serial order; ClientError for a malformed query."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> Store: ...

    def __exit__(self, *exc: object) -> None: ...
