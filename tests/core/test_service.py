"""`hanko serve` as a real process on loopback: health, token roles, JSON errors, clean
shutdown on SIGINT/SIGTERM with its worker processes gone."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import BIN, DevCA, free_port


@pytest.fixture
def service(fresh_ca: DevCA) -> Iterator[tuple[str, DevCA, subprocess.Popen[str]]]:
    port = free_port()
    text = fresh_ca.config_path.read_text().replace("127.0.0.1:8443", f"127.0.0.1:{port}")
    fresh_ca.config_path.write_text(text)
    proc = subprocess.Popen(
        [str(BIN / "hanko"), "serve", "-c", str(fresh_ca.config_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.1)
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
    else:
        proc.kill()
        pytest.fail("hanko serve did not come up")
    yield base, fresh_ca, proc
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def token(ca: DevCA, role: str) -> str:
    return (ca.directory / "secrets" / f"{role}.token").read_text().strip()


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
