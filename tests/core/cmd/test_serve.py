"""`hanko serve` as a real process on loopback: health, token roles, JSON errors, clean
shutdown on SIGINT/SIGTERM with its worker processes gone."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import BIN, DevCA, anonymous, client, new_key, paying_org, serve_log


def worker_pids(parent: int) -> list[int]:
    out = subprocess.run(
        ["pgrep", "-P", str(parent)], capture_output=True, text=True, check=False
    ).stdout
    return [int(p) for p in out.split()]


def test_health_and_statistics(service: tuple[str, DevCA, subprocess.Popen[str]]) -> None:
    base, ca, _proc = service
    assert anonymous(base, ca).get("/healthz").json() == {"status": "ok"}
    stats = client(base, ca, "admin").get("/v1/statistics")
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
        ({"Authorization": "Bearer wrong"}, 401, "unauthenticated"),
        ("issuer", 403, "forbidden"),
    ],
)
def test_statistics_needs_an_admin(
    service: tuple[str, DevCA, subprocess.Popen[str]], headers: object, status: int, code: str
) -> None:
    base, ca, _ = service
    if headers == "issuer":
        with client(base, ca, "admin") as admin:
            paying_org(admin, "acme")
        headers = {"Authorization": f"Bearer {new_key(base, ca, 'issuer', 'acme')['secret']}"}
    r = anonymous(base, ca).get("/v1/statistics", headers=headers)  # type: ignore[arg-type]
    assert r.status_code == status
    assert r.json()["error"] == code
    assert r.headers["content-type"] == "application/json"


def test_unknown_routes_are_json_errors(service: tuple[str, DevCA, subprocess.Popen[str]]) -> None:
    base, ca, _ = service
    r = anonymous(base, ca).get("/nope")
    assert (r.status_code, r.json()["error"]) == (404, "not_found")
    r = anonymous(base, ca).post("/healthz", content=b"x")
    assert (r.status_code, r.json()["error"]) == (405, "method_not_allowed")


def running(pid: int) -> bool:
    """Whether `pid` is still a live process (a zombie awaiting its parent is not)."""
    try:
        return "Z (zombie)" not in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False


def issue_a_batch(base: str, ca: DevCA) -> None:
    """Issue 20 certificates in one batch: enough to start the intake processes."""
    from tests.core.api.test_rpc import csr

    with client(base, ca, "admin") as admin:
        paying_org(admin, "s")
    items = [
        {"csr": csr(f"h{i}.example.co.jp"), "profile": "ov", "organization": "s"} for i in range(20)
    ]
    r = client(base, ca, "rpc", "s").post(
        "/v1/certificates:batch", json={"requests": items}, timeout=60
    )
    assert r.status_code == 200
    assert all(item["result"] for item in r.json()["results"])


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_clean_shutdown(service: tuple[str, DevCA, subprocess.Popen[str]], sig: int) -> None:
    base, ca, proc = service
    issue_a_batch(base, ca)
    children = worker_pids(proc.pid)
    assert len(children) >= 3, "signer workers and intake processes should be running"
    proc.send_signal(sig)
    assert proc.wait(timeout=20) == 0
    assert "Traceback" not in serve_log(ca).read_text()
    # Every child (signer workers, intake processes, multiprocessing's helper) is gone
    # within a bounded time once the service has exited.
    deadline = time.monotonic() + 10
    while any(running(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [pid for pid in children if running(pid)] == []


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


def test_responders_do_not_outlive_a_killed_service(
    service: tuple[str, DevCA, subprocess.Popen[str]],
) -> None:
    """kill -9 gives the service no chance to stop its OCSP responder processes; they
    must go by themselves and free the port."""
    _, _, proc = service
    responders = [
        pid
        for pid in worker_pids(proc.pid)
        if "ocsp.status.server" in Path(f"/proc/{pid}/cmdline").read_text(errors="replace")
    ]
    assert len(responders) >= 1
    # They stay up while the service lives, past trio's 10 s idle-thread retirement
    # (the thread that forked them): a parent-death signal tied to it killed them once.
    time.sleep(12)
    assert all(running(pid) for pid in responders)
    proc.kill()
    proc.wait(timeout=20)
    deadline = time.monotonic() + 10
    while any(running(pid) for pid in responders) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [pid for pid in responders if running(pid)] == []
