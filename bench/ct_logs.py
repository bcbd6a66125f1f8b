"""Certificate Transparency logs for the benchmarks: the tests' CT log (tests/ct_log.py
in this checkout), one process per operator on loopback, and the [ct] table naming them."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CT_OPERATORS = ("bench-google", "bench-cloudflare", "bench-digicert")


@contextlib.contextmanager
def ct_logs() -> Iterator[list[subprocess.Popen[str]]]:
    """Three of the tests' CT logs, each a process (tests/ct_log.py in this checkout)."""
    if not (ROOT / "tests" / "ct_log.py").is_file():
        raise SystemExit("the CT test log (tests/ct_log.py) is not in this checkout")
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.ct_log", "--operator", op],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for op in CT_OPERATORS
    ]
    try:
        yield procs
    finally:
        for proc in procs:
            if proc.stdin is not None:
                proc.stdin.close()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def ct_table(procs: list[subprocess.Popen[str]]) -> str:
    text = "\n[ct]\nallow_private = true\n"  # the bench's logs are on loopback
    for proc in procs:
        assert proc.stdout is not None
        log = json.loads(proc.stdout.readline())
        text += (
            f'\n[[ct.logs]]\nurl = "{log["url"]}"\nkey = "{log["key"]}"\n'
            f'operator = "{log["operator"]}"\n'
        )
    return text
