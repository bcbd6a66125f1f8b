"""`hanko bench scale` runs small against the development CA, real Redis, nginx and wrk
(a smoke run, not a measurement): every part reports, and the figures agree with one
another."""

from __future__ import annotations

import json

import pytest

from tests.conftest import DevCA, hanko


@pytest.mark.slow
def test_the_scale_bench_runs(fresh_ca: DevCA) -> None:
    out = hanko(
        "bench", "scale", "-c", str(fresh_ca.config_path), "--json", "--certs", "25000",
        "--revoked", "0.1", "--sample", "500", "--seconds", "1", "--connections", "8",
        timeout=900,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout)
    store, status, crl = report["store"], report["status"], report["crl"]
    assert store["certs_per_s"] > 0
    assert store["store_bytes_per_cert"] > 0
    # Every response, plus the responder key's envelope.
    assert status["redis_keys_written"] == 25_001
    assert report["host_follows"] == "replica"
    for phase in ("first_start", "restart"):
        assert 0 < status[phase]["listening_seconds"] <= status[phase]["ready_seconds"]
    assert status["hanko GET"]["non_2xx"] == 0
    assert status["hanko GET"]["requests_per_s"] > 0
    assert status["hanko_get_over_nginx_get"] > 0
    # The copier, then one entry per responder process, each with its memory.
    assert len(status["memory_after_load_mib"]) == 1 + report["settings"]["responder_processes"]
    assert all(m["VmRSS"] > 0 for m in status["memory_after_load_mib"])
    assert 2000 < crl["entries"] < 3000  # 10% of 25,000, drawn at random
    assert report["refresh"]["headroom"] > 1
