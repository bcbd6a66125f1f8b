"""The tests' PostgreSQL clusters: bench/pg_cluster.py's, and a clear failure when
PostgreSQL is not installed."""

from __future__ import annotations

from typing import Any

import pytest

from bench.pg_cluster import ADMIN_ROLE, RUNTIME_ROLE, SUPERUSER, NotInstalled
from bench.pg_cluster import PostgresServer as _Cluster

__all__ = ["ADMIN_ROLE", "RUNTIME_ROLE", "SUPERUSER", "PostgresServer"]


class PostgresServer(_Cluster):
    def __init__(self, **kwargs: Any) -> None:
        try:
            super().__init__(**kwargs)
        except NotInstalled as exc:
            pytest.fail(f"{exc} (the test command does)")
