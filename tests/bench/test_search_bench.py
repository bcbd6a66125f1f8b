"""`hanko bench search` runs small (a smoke run, not a measurement): both back ends
hold the same certificates and every query finds the same ones on each, as many as the
generator's arithmetic says."""

from __future__ import annotations

import json

from tests.conftest import hanko


def test_the_search_bench_runs() -> None:
    out = hanko("bench", "search", "--certs", "10000", "--json", timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout)
    assert report["certificates"] == 10_000
    found = {q["query"]: q["found"] for q in report["queries"]}
    # 10,000 certificates over 200,000 domains: d12345 is nobody's; one account in 1,000.
    assert found["a host name"] == 0
    assert found["an account"] == 10
    # One in 5 EV, one in 20 revoked (i % 20 == 0 implies i % 5 == 0), one in 3 RSA.
    assert found["EV, revoked, RSA-2048"] == len([i for i in range(0, 10_000, 20) if i % 3 == 2])
    for q in report["queries"]:
        assert q["lmdb_seconds"] > 0
        assert q["postgresql_seconds"] > 0
