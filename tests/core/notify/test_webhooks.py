"""Webhooks end to end: a real HTTP receiver on loopback, `hanko serve` delivering from
its outbox. A certificate issued for 20 days gives exactly one 30-day reminder, also
across a restart; a receiver that answers 500 three times gets the event on the
fourth try; every delivery verifies with the secret; revocation and licence events
arrive; `hanko notify status` tells the backlog."""

from __future__ import annotations

import json
import select
import subprocess
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from core.notify import signing
from tests.conftest import BIN, DevCA, Service, client, csr, free_port, hanko, paying_org

FAST = {
    "replace": [
        (
            "expiry_days = [30, 10]",
            'expiry_days = [30, 10]\nallow_private = true\nsweep_every = "1s"\n'
            'retry_schedule = ["1s", "1s", "1s", "1s", "1s"]\nlicense_days = 40',
        )
    ]
}


class Receiver:
    """Takes POSTs; the first event it sees gets 500 for its first `fail` deliveries.
    Keeps what each request carried."""

    def __init__(self, fail: int = 0) -> None:
        self.fail = fail
        self.victim = ""
        self.seen: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                event = json.loads(body)["id"]
                with outer.lock:
                    outer.victim = outer.victim or event
                    failing = event == outer.victim and outer.fail > 0
                    outer.fail -= failing
                    outer.seen.append(
                        {
                            "body": body,
                            "headers": dict(self.headers),
                            "status": 500 if failing else 200,
                        }
                    )
                self.send_response(500 if failing else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hanko"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def delivered(self) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(s["body"]) for s in self.seen if s["status"] == 200]

    def wait_for(self, predicate: Any, seconds: float = 30) -> list[dict[str, Any]]:
        deadline = time.monotonic() + seconds
        while True:
            events = self.delivered()
            if predicate(events):
                return events
            assert time.monotonic() < deadline, events
            time.sleep(0.2)


def restart(ca: DevCA, proc: subprocess.Popen[str]) -> subprocess.Popen[str]:
    proc.terminate()
    proc.wait(timeout=60)
    again = subprocess.Popen(
        [str(BIN / "hanko"), "serve", "-c", str(ca.config_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert again.stdout is not None
    ready, _, _ = select.select([again.stdout], [], [], 30)
    assert ready
    assert "serving the API" in again.stdout.readline()
    return again


@pytest.mark.parametrize("service", [FAST], indirect=True)
def test_webhook_events_reminders_retries_and_signatures(service: Service) -> None:
    base, ca, proc = service
    admin = client(base, ca, "admin")
    paying_org(admin, "acme")
    receiver = Receiver(fail=3)
    r = admin.put("/v1/admin/accounts/acme/webhook", json={"url": receiver.url})
    assert r.status_code == 200, r.text
    secret = bytes.fromhex(r.json()["secret"].removeprefix("whsec_"))
    refused = admin.put("/v1/admin/accounts/acme/webhook", json={"url": "ftp://x.example/"})
    assert refused.status_code == 422

    rpc = client(base, ca, "rpc", "acme")
    issued = rpc.post(
        "/v1/certificates",
        json={
            "csr": csr("www.example.co.jp"),
            "profile": "ov",
            "organization": "acme",
            "validity_days": 20,
        },
    )
    assert issued.status_code == 201, issued.text
    serial = issued.json()["serial"]

    def kinds(events: list[dict[str, Any]]) -> Counter[str]:
        return Counter(e["type"] for e in events if e["data"].get("serial") == serial)

    events = receiver.wait_for(
        lambda ev: kinds(ev)["certificate.issued"] == 1 and kinds(ev)["certificate.expiring"] == 1
    )
    reminder = next(e for e in events if e["type"] == "certificate.expiring")
    assert reminder["data"]["reminder_days"] == 30  # 20 days left: the 10-day one is not due
    # The first event met three 500s and was taken at the fourth try.
    with receiver.lock:
        tries = Counter(json.loads(s["body"])["id"] for s in receiver.seen)
        statuses = {json.loads(s["body"])["id"]: [] for s in receiver.seen}
        for s in receiver.seen:
            statuses[json.loads(s["body"])["id"]].append(s["status"])
    assert any(v == [500, 500, 500, 200] for v in statuses.values()), statuses
    assert max(tries.values()) == 4
    # Every request verifies with the secret, and carries its event id.
    with receiver.lock:
        for s in receiver.seen:
            assert signing.verify(
                secret, s["body"], s["headers"][signing.HEADER], now=int(time.time())
            )
            assert s["headers"]["Hanko-Event-Id"] == json.loads(s["body"])["id"]
    assert not signing.verify(
        b"wrong",
        receiver.seen[0]["body"],
        receiver.seen[0]["headers"][signing.HEADER],
        now=int(time.time()),
    )

    # Revocation and licence events.
    assert (
        rpc.post(f"/v1/certificates/{serial}/revoke", json={"reason": "keyCompromise"}).status_code
        == 200
    )
    r = admin.post(
        "/v1/admin/accounts/acme/licenses",
        json={"id": "acme-monthly", "kind": "monthly", "quantity": 5, "months": 1},
    )
    assert r.status_code == 201, r.text
    events = receiver.wait_for(
        lambda ev: (
            kinds(ev)["certificate.revoked"] == 1
            and any(e["type"] == "license.term_ending" for e in ev)
        )
    )
    revoked = next(e for e in events if e["type"] == "certificate.revoked")
    assert revoked["data"]["reason"] == "keyCompromise"
    ending = next(e for e in events if e["type"] == "license.term_ending")
    assert ending["data"]["license"] == "acme-monthly"

    # Across a restart: nothing delivered is sent again, no reminder is queued twice.
    # Counted once the outbox is empty: an event still on its way would land later.
    deadline = time.monotonic() + 30
    while True:
        pending = hanko("notify", "status", "-c", str(ca.config_path), "--json")
        assert pending.returncode == 0, pending.stderr
        if json.loads(pending.stdout)["pending"] == 0:
            break
        assert time.monotonic() < deadline, pending.stdout
        time.sleep(0.2)
    count = len(receiver.delivered())
    proc2 = restart(ca, proc)
    try:
        time.sleep(4)  # several reminder sweeps and delivery polls
        after = receiver.delivered()
        assert len(after) == count
        assert kinds(after)["certificate.expiring"] == 1
        assert len({e["id"] for e in after}) == len(after)
        status = hanko("notify", "status", "-c", str(ca.config_path), "--json")
        assert status.returncode == 0, status.stderr
        backlog = json.loads(status.stdout)
        assert (backlog["pending"], backlog["given_up"]) == (0, 0)
        assert backlog["delivered"] == count
    finally:
        proc2.terminate()
        proc2.wait(timeout=60)
