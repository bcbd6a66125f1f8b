"""The leader lock on PostgreSQL (core/store/leader_lock.py says what it decides): a
session advisory lock, on a connection of its own."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import psycopg

from core.store.pg_kv import first_line

LEADER_LOCK = 0x68616E6B6F_03  # "hanko" | 3


class PgLeaderLock:
    """The advisory lock, on a connection made by `connect` (used from worker threads,
    one call at a time)."""

    def __init__(self, connect: Callable[[], psycopg.Connection[Any]], where: str) -> None:
        self._connect = connect
        self._where = where
        self._conn: psycopg.Connection[Any] | None = None
        self._held = False
        self._mutex = threading.Lock()
        self.last_error = ""

    def try_acquire(self) -> bool:
        with self._mutex:
            try:
                if self._conn is None or self._conn.closed:
                    self._held = False
                    self._conn = self._connect()
                row = self._conn.execute(
                    "SELECT pg_try_advisory_lock(%s)", (LEADER_LOCK,)
                ).fetchone()
            except psycopg.Error as exc:
                self._drop(exc)
                return False
            self._held = bool(row and row[0])
            return self._held

    def holds(self) -> bool:
        with self._mutex:
            if self._conn is None or self._conn.closed or not self._held:
                return False
            try:
                self._conn.execute("SELECT 1").fetchone()
            except psycopg.Error as exc:
                self._drop(exc)
                return False
            return True

    def release(self) -> None:
        with self._mutex:
            # Closing the session releases the lock, also when the unlock cannot be sent.
            if self._conn is not None:
                self._conn.close()
            self._conn = None
            self._held = False

    def _drop(self, exc: Exception) -> None:
        self.last_error = first_line(exc)
        if self._conn is not None:
            self._conn.close()
        self._conn = None
        self._held = False

    def describe(self) -> str:
        return f"the leader lock of {self._where}"
