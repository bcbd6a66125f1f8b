"""`hanko bench ... --report DIR`: the page, its plots and the JSON beside it. The
charts come from the report's shape (pure, tested on a report of known figures); the
slow test runs `hanko bench ocsp` small, with its real peers, and decodes every PNG."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from matplotlib import image

from bench.progress import Progress
from bench.report import charts_from
from tests.conftest import BIN, DevCA

REPORT = {
    "load": {
        "hanko GET": {"requests_per_s": 30000.0, "p50_ms": 1.0, "p99_ms": 5.0},
        "nginx GET": {"requests_per_s": 45000.0, "p50_ms": 0.8, "p99_ms": 4.0},
    },
    "refresh": {"responses_per_s": 9000.0, "signatures_per_s": 18000.0, "parts": []},
    "levels": [
        {"accounts": 1, "hanko": {"orders_per_s": 10.0}, "pebble": {"orders_per_s": 8.0}},
        {"accounts": 16, "hanko": {"orders_per_s": 100.0}, "pebble": {"orders_per_s": 80.0}},
    ],
}


def test_charts_follow_the_report_shape() -> None:
    charts = {c.title: c for c in charts_from(REPORT, "x")}
    load = charts["x load: throughput"]
    assert load.labels == ["hanko GET", "nginx GET"]
    assert load.series == {"requests/s": [30000.0, 45000.0]}
    latency = charts["x load: latency percentiles"]
    assert latency.series == {"p50": [1.0, 0.8], "p99": [5.0, 4.0]}
    assert charts["x refresh: rates"].series == {"per second": [9000.0, 18000.0]}
    levels = charts["x levels: throughput by level"]
    assert levels.labels == ["accounts=1", "accounts=16"]
    assert levels.series == {"hanko": [10.0, 100.0], "pebble": [8.0, 80.0]}


def test_a_bar_reports_progress_lines_into_a_file(tmp_path: Path) -> None:
    out = tmp_path / "progress.txt"
    with out.open("w") as stream:
        bar = Progress("t", stream).bar("storing 10 things", 10)
        bar.advance(10)
        bar.close()
    lines = out.read_text().splitlines()
    assert lines[0].startswith("bench t: storing 10 things [")
    assert "10/10 100%" in lines[-2]
    assert re.fullmatch(r"bench t: storing 10 things: done in [\d.]+ s", lines[-1])


@pytest.mark.slow
def test_bench_ocsp_writes_a_report_whose_plots_decode(dev_ca: DevCA, tmp_path: Path) -> None:
    out = tmp_path / "report"
    run = subprocess.run(
        [str(BIN / "hanko"), "bench", "ocsp", "-c", str(dev_ca.config_path), "--certs", "2000",
         "--sample", "200", "--seconds", "1", "--connections", "8", "--report", str(out)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert f"report written to {out / 'ocsp.html'}" in run.stderr
    assert "re-signing 2,000 responses" in run.stderr  # progress while it works
    report = json.loads((out / "ocsp.json").read_text())
    assert set(report["load"]) == {
        "hanko GET", "hanko POST", "replica GET", "replica POST", "cfssl POST", "nginx GET"
    }  # fmt: skip
    # The responder on a Redis replica answered the same requests (checked by the
    # bench before loading it) and served every revocation.
    assert report["replica"]["revocation_to_served"]["revocations"] > 0
    assert report["ratios"]["replica_get_over_lmdb_get"] > 0
    page = (out / "ocsp.html").read_text()
    images = re.findall(r'<img src="([^"]+\.png)"', page)
    assert len(images) >= 3
    for name in images:
        pixels = image.imread(out / name)
        height, width = pixels.shape[:2]
        assert (width, height) == (800, 450)
        assert pixels.std() > 0.05  # bars and text, not a blank canvas
    assert "ocsp load: throughput" in page
    assert "hanko_get_over_nginx_get" in page
