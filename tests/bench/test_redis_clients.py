"""`hanko bench redis-clients` runs against a real redis-server it starts itself and
reports both trio-side clients and the uvloop-side reads (a smoke run, not a
measurement)."""

from __future__ import annotations

import json

from tests.conftest import hanko


def test_the_redis_client_comparison_runs() -> None:
    out = hanko("bench", "redis-clients", "--json", "--keys", "1000", "--rounds", "1")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["missing"] == []
    for name in ("redis_py_worker_thread", "coredis_trio"):
        assert report[name]["sets_per_s"]["median"] > 0
    for kind in ("asyncio_get", "asyncio_mget"):
        assert report[kind]["keys_per_s"]["median"] > 0
