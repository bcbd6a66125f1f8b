"""The README's walkthrough (first certificate, stapling with nginx, revocation) runs
as written: every block marked `<!-- walkthrough -->` in order, in one bash with
`set -euo pipefail`, in an empty folder, with `hanko` on PATH as `scripts/dev.sh`
leaves it. A step whose check fails (a grep that finds nothing) fails the test."""

from __future__ import annotations

import os
import re
import socket
import subprocess
from pathlib import Path

import pytest

from tests.conftest import BIN

README = Path(__file__).resolve().parents[1] / "README.md"
# The walkthrough uses the development defaults, as a reader's machine would.
PORTS = (8443, 8080, 9464, 8444, 8445)


def walkthrough() -> str:
    blocks = re.findall(r"<!-- walkthrough -->\n```sh\n(.*?)```", README.read_text(), re.S)
    assert len(blocks) >= 6, "the README lost its walkthrough blocks"
    return "\n".join(blocks)


def test_the_walkthrough_blocks_cover_every_step() -> None:
    script = walkthrough()
    for step in (
        "hanko init",
        "hanko serve",
        "hanko licenses create-account",
        "hanko org create",
        "hanko domain validate",
        "hanko caa check",
        "openssl req",
        "hanko issue",
        "openssl ocsp",
        "hanko ocsp export",
        "ssl_stapling_file",
        "ssl_stapling_responder",
        "hanko revoke",
        "hanko crl",
        "kill %1",
    ):
        assert step in script, step


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.mark.slow
def test_the_readme_walkthrough_runs_as_written(tmp_path: Path) -> None:
    busy = [p for p in PORTS if not _port_free(p)]
    if busy:
        pytest.fail(f"the walkthrough needs ports {busy} on 127.0.0.1, which are in use")
    # The development resolver `hanko init` points at, as `scripts/dev.sh` leaves it.
    started = subprocess.run(
        ["bash", str(README.parent / "scripts" / "dev.sh"), "resolver"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert started.returncode == 0, started.stderr
    env = dict(os.environ, PATH=f"{BIN}:{os.environ['PATH']}")
    env.pop("HANKO_CONFIG", None)
    # Whatever happens, nothing the walkthrough started outlives it.
    cleanup = "kill $(jobs -p) 2>/dev/null; [ -f nginx/nginx.pid ] && kill $(cat nginx/nginx.pid)"
    script = f"set -euo pipefail\ntrap 'set +e; {cleanup}' EXIT\n" + walkthrough()
    result = subprocess.run(
        ["bash", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    log = tmp_path / "serve.log"
    assert result.returncode == 0, (
        result.stdout[-3000:]
        + result.stderr[-3000:]
        + (log.read_text()[-2000:] if log.exists() else "")
    )
    out = result.stdout
    assert "www.pem: OK" in out
    assert "www.pem: good" in out
    assert out.count("Cert Status: good") == 2  # stapled from the file and fetched
    assert "Reason: keyCompromise" in out
    assert "drained" in log.read_text()
