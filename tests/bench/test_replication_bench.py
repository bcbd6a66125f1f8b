"""`hanko bench replication` runs small against a real redis-server it starts itself
(a smoke run, not a measurement)."""

from __future__ import annotations

import json

from tests.conftest import hanko


def test_the_replication_bench_runs() -> None:
    out = hanko("bench", "replication", "--json", "--certs", "2000", "--changes", "500")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["resync_keys"] == 2001  # every response and the one envelope
    assert report["resync_seconds"] > 0
    assert report["burst_changes_per_s"] > 0
