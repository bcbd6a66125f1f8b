"""Running wrk and reading its report: shared by the load benchmarks."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def run_wrk(
    url: str, script: Path, *, connections: int, seconds: float, threads: int = 1
) -> dict[str, float]:
    """requests/s, p50 and p99 in ms, non-2xx/3xx count and socket errors of one run, and
    the requests it completed in how many seconds."""
    out = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--latency",
            "--timeout",
            "30s",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    ).stdout
    found = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if found is None:
        raise RuntimeError(f"wrk printed no request rate:\n{out}")
    rate = float(found.group(1))
    lat = {}
    for q in ("50", "75", "90", "99"):
        m = re.search(rf"^\s+{q}%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
        lat[q] = float(m.group(1)) * _UNITS[m.group(2)] if m else float("nan")
    done = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)\b", out)
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    return {
        "requests_per_s": rate,
        "p50_ms": lat["50"],
        "p75_ms": lat["75"],
        "p90_ms": lat["90"],
        "p99_ms": lat["99"],
        "non_2xx": float(bad.group(1)) if bad else 0.0,
        "socket_errors": 1.0 if errors else 0.0,
        "requests": float(done.group(1)) if done else float("nan"),
        "seconds": float(done.group(2)) * _UNITS[done.group(3)] / 1e3 if done else float("nan"),
    }
