"""The read-only view an OCSP responder process answers from, on PostgreSQL: the same
calls as the LMDB view (core/store/ocsp_view.py), each one query on a connection of the
process's own, in autocommit (every lookup sees the latest commit; `renew` has nothing
to do).

The responder caches answers and looks a key up again only when a generation moves, so
the database sees about one query per distinct request per second. While the database
cannot be reached, a lookup answers "no response yet" for a serial it cannot check
(tryLater, never unauthorized or a stale "good"), and the connection is made again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import sql

from core.store.keys import ENVELOPE_GENERATION_KEY, ENVELOPE_PREFIX, STATUS_GENERATION_KEY
from core.store.pg_kv import first_line

log = logging.getLogger("hanko.ocsp")
# After a failure, the next lookups fail at once for this long instead of each waiting
# for a connect timeout.
RETRY_SECONDS = 1.0


class PgOcspView:
    __slots__ = ("_conn", "_connect", "_down_until", "_now")

    def __init__(
        self, connect: Callable[[], psycopg.Connection[Any]], now: Callable[[], float]
    ) -> None:
        self._connect = connect
        self._now = now
        self._conn: psycopg.Connection[Any] | None = None
        self._down_until = 0.0

    def _get(self, table: str, key: bytes) -> bytes | Exception | None:
        if self._conn is None or self._conn.closed:
            if self._now() < self._down_until:
                return ConnectionError("the store is unreachable")
            try:
                self._conn = self._connect()
            except psycopg.Error as exc:
                self._down_until = self._now() + RETRY_SECONDS
                return exc
        try:
            row = self._conn.execute(_GET[table], (key,), binary=True).fetchone()
        except psycopg.Error as exc:
            log.warning("status lookup failed: %s", first_line(exc))
            self._conn.close()
            self._down_until = self._now() + RETRY_SECONDS
            return exc
        return None if row is None else bytes(row[0])

    def renew(self) -> None:
        """Nothing to renew: each lookup reads the latest commit."""

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()

    def response(self, key: bytes) -> bytes | None:
        found = self._get("ocsp", key)
        return None if isinstance(found, Exception) else found

    def issued(self, key: bytes) -> bool:
        # Unknown while the store is unreachable: issued, so the answer is tryLater.
        found = self._get("certs", key)
        return isinstance(found, Exception) or found is not None

    def envelope(self, key_hash: bytes) -> bytes | None:
        found = self._get("meta", ENVELOPE_PREFIX + key_hash)
        return None if isinstance(found, Exception) else found

    def status_generation(self) -> bytes | None:
        found = self._get("counters", STATUS_GENERATION_KEY)
        return None if isinstance(found, Exception) else found

    def envelope_generation(self) -> bytes | None:
        found = self._get("counters", ENVELOPE_GENERATION_KEY)
        return None if isinstance(found, Exception) else found


_GET: dict[str, sql.SQL | sql.Composed] = {
    t: sql.SQL("SELECT v FROM {} WHERE k = %s").format(sql.Identifier(t))
    for t in ("ocsp", "meta", "counters")
}
# Whether a serial was issued: its row in the typed certificates table.
_GET["certs"] = sql.SQL("SELECT ''::bytea FROM certificates WHERE k = %s")
