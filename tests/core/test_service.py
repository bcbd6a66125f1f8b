"""`hanko serve` as a real process on loopback: health, token roles, JSON errors, clean
shutdown on SIGINT/SIGTERM with its worker processes gone."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.conftest import BIN, DevCA, token


def worker_pids(parent: int) -> list[int]:
    out = subprocess.run(
        ["pgrep", "-P", str(parent)], capture_output=True, text=True, check=False
    ).stdout
    return [int(p) for p in out.split()]


def test_health_and_statistics(service: tuple[str, DevCA, subprocess.Popen[str]]) -> None:
    base, ca, _proc = service
    assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}
    stats = httpx.get(
        f"{base}/v1/statistics", headers={"Authorization": f"Bearer {token(ca, 'admin')}"}
    )
    assert stats.status_code == 200
    body = stats.json()
    assert len(body["signer"]["workers"]) >= 1
    assert all(w["alive"] for w in body["signer"]["workers"])
    assert body["store"]["meta"] == 1
    assert "commits" in body["writer"]


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({}, 401, "unauthenticated"),
        ({"Authorization": "Basic abc"}, 401, "unauthenticated"),
        ({"Authorization": "Bearer wrong"}, 403, "forbidden"),
        ("rpc", 403, "forbidden"),
    ],
)
def test_statistics_needs_the_admin_token(
    service: tuple[str, DevCA, subprocess.Popen[str]], headers: object, status: int, code: str
) -> None:
    base, ca, _ = service
    if headers == "rpc":
        headers = {"Authorization": f"Bearer {token(ca, 'rpc')}"}
    r = httpx.get(f"{base}/v1/statistics", headers=headers)  # type: ignore[arg-type]
    assert r.status_code == status
    assert r.json()["error"] == code
    assert r.headers["content-type"] == "application/json"


def test_unknown_routes_are_json_errors(service: tuple[str, DevCA, subprocess.Popen[str]]) -> None:
    base, _, _ = service
    r = httpx.get(f"{base}/nope")
    assert (r.status_code, r.json()["error"]) == (404, "not_found")
    r = httpx.post(f"{base}/healthz", content=b"x")
    assert (r.status_code, r.json()["error"]) == (405, "method_not_allowed")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_clean_shutdown(service: tuple[str, DevCA, subprocess.Popen[str]], sig: int) -> None:
    _, _, proc = service
    children = worker_pids(proc.pid)
    assert children, "the signer workers should be running"
    proc.send_signal(sig)
    assert proc.wait(timeout=20) == 0
    assert proc.stderr is not None
    assert "Traceback" not in proc.stderr.read()
    for pid in children:
        assert (
            not Path(f"/proc/{pid}").exists()
            or "Z (zombie)" in Path(f"/proc/{pid}/status").read_text()
        )


def test_serve_refuses_to_start_with_a_wrong_pin(fresh_ca: DevCA) -> None:
    pin = fresh_ca.directory / "secrets" / "hsm.pin"
    pin.write_text("wrong\n")
    result = subprocess.run(
        [str(BIN / "hanko"), "serve", "-c", str(fresh_ca.config_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "hanko: error: token 'hanko' refused login: wrong PIN"
    )
    assert "Traceback" not in result.stderr
