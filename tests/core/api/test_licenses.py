"""The admin API for accounts and licenses on a real `hanko serve`: tokens, errors,
views, 200 simultaneous issuances against 100 units, and kill -9 in mid-stream."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import os
import signal
import subprocess
import threading
import time
from typing import Any

import httpx
import pytest

from tests.conftest import Service, anonymous, client, csr, hanko, keyed, new_key, paying_org

ORG = {
    "level": "ov",
    "organization": "Kanto Trading K.K.",
    "country": "JP",
    "state": "Tokyo-to",
    "locality": "Minato-ku",
}


def open_account(admin: httpx.Client, account: str, license: dict[str, Any]) -> None:
    assert (
        admin.post("/v1/admin/accounts", json={"id": account, "name": "Kanto"}).status_code == 201
    )
    r = admin.post(f"/v1/admin/accounts/{account}/licenses", json=license)
    assert r.status_code == 201, r.text
    r = admin.post("/v1/admin/organizations", json={"id": account, "account": account, **ORG})
    assert r.status_code == 201, r.text
    r = admin.post(
        f"/v1/admin/organizations/{account}/domains",
        json={"domain": "kanto.co.jp", "method": "dns-txt"},
    )
    assert r.status_code == 201, r.text


def issue(rpc: httpx.Client, account: str, name: str, **extra: Any) -> httpx.Response:
    return rpc.post(
        "/v1/certificates",
        json={"csr": csr(name), "profile": "ov", "organization": account, **extra},
    )


def test_tokens_are_kept_apart(service: Service) -> None:
    base, ca, _ = service
    admin = client(base, ca, "admin")
    paying_org(admin, "acme")
    rpc = client(base, ca, "rpc")
    for path in ("/v1/admin/accounts", "/v1/admin/accounts/acme/inventory"):
        assert rpc.get(path).status_code == 403
        assert anonymous(base, ca).get(path).status_code == 401
        assert admin.get(path).status_code == 200
    r = admin.post(
        "/v1/certificates",
        json={"csr": csr("www.example.co.jp"), "profile": "ov", "organization": "acme"},
    )
    assert r.status_code == 403
    assert r.json()["error"] == "forbidden"


def test_errors_are_precise_and_change_nothing(service: Service) -> None:
    base, ca, _ = service
    admin = client(base, ca, "admin")
    open_account(admin, "kanto", {"id": "units", "kind": "non_pooled", "quantity": 2})
    before = admin.get("/v1/admin/accounts/kanto/ledger").json()
    cases: list[tuple[str, str, dict[str, Any], int, str]] = [
        ("POST", "/v1/admin/accounts", {"id": "kanto", "name": "again"}, 409, "account_exists"),
        ("POST", "/v1/admin/accounts", {"id": "bad id", "name": "x"}, 422, "invalid_request"),
        ("GET", "/v1/admin/accounts/nobody/inventory", {}, 404, "not_found"),
        (
            "POST",
            "/v1/admin/accounts/kanto/licenses",
            {"id": "units", "kind": "non_pooled", "quantity": 1},
            409,
            "license_exists",
        ),
        (
            "POST",
            "/v1/admin/accounts/kanto/licenses",
            {"id": "c", "kind": "coupon", "quantity": 4},
            422,
            "license_quantity_invalid",
        ),
        (
            "POST",
            "/v1/admin/accounts/kanto/licenses",
            {"id": "p", "kind": "pooled", "quantity": 1, "years": 6},
            422,
            "invalid_request",
        ),
        (
            "POST",
            "/v1/admin/accounts/kanto/licenses",
            {"id": "p", "kind": "pooled", "quantity": 1},
            422,
            "license_term_invalid",
        ),
        (
            "POST",
            "/v1/admin/accounts/kanto/licenses",
            {"id": "x", "kind": "lifetime", "quantity": 1},
            422,
            "invalid_request",
        ),
        ("POST", "/v1/admin/accounts/kanto/licenses/units/renew", {}, 422, "license_not_renewable"),
        (
            "POST",
            "/v1/admin/accounts/kanto/licenses/units/add",
            {"quantity": -1},
            422,
            "invalid_request",
        ),
        (
            "POST",
            "/v1/admin/accounts/kanto/licenses/nope/add",
            {"quantity": 1},
            422,
            "license_unknown",
        ),
        (
            "POST",
            "/v1/admin/accounts/kanto/licenses/units/domains",
            {"domain": "a.jp"},
            422,
            "license_wrong_kind",
        ),
        ("GET", "/v1/admin/accounts/kanto/ledger?since=abc", {}, 422, "invalid_request"),
    ]
    for method, path, body, status, code in cases:
        r = admin.request(method, path, json=body) if method == "POST" else admin.get(path)
        assert (r.status_code, r.json()["error"]) == (status, code), (path, body, r.text)
    assert admin.get("/v1/admin/accounts/kanto/ledger").json() == before


def test_administrators_are_added_and_removed(service: Service) -> None:
    base, ca, _ = service
    admin = client(base, ca, "admin")
    open_account(admin, "tohoku", {"id": "units", "kind": "non_pooled", "quantity": 1})
    path = "/v1/admin/accounts/tohoku/administrators"
    assert admin.post(path, json={"email": "Sato@tohoku.co.jp"}).status_code == 201
    r = admin.post(path, json={"email": "suzuki@tohoku.co.jp"})  # one included, no extras
    assert (r.status_code, r.json()["error"]) == (422, "license_required")
    before = admin.get("/v1/admin/accounts/tohoku/ledger").json()
    r = client(base, ca, "rpc", "tohoku").delete(f"{path}/sato@tohoku.co.jp")
    assert r.status_code in (401, 403)
    r = admin.delete(f"{path}/sato@tohoku.co.jp")
    assert r.status_code == 200, r.text
    assert r.json()["admins"] == []
    for gone in (f"{path}/sato@tohoku.co.jp", "/v1/admin/accounts/nobody/administrators/x@y.jp"):
        r = admin.delete(gone)
        assert (r.status_code, r.json()["error"]) == (404, "not_found")
    # The seat is free again; nothing was charged or given back.
    assert admin.post(path, json={"email": "suzuki@tohoku.co.jp"}).status_code == 201
    assert admin.get("/v1/admin/accounts/tohoku").json()["admins"] == ["suzuki@tohoku.co.jp"]
    assert admin.get("/v1/admin/accounts/tohoku/ledger").json() == before


def test_inventory_ledger_and_certificates_by_account(service: Service) -> None:
    base, ca, _ = service
    admin = client(base, ca, "admin")
    open_account(admin, "kanto", {"id": "pool", "kind": "pooled", "quantity": 2, "years": 1})
    rpc = client(base, ca, "rpc", "kanto")
    r = admin.post(
        "/v1/admin/accounts/kanto/licenses",
        json={"id": "units", "kind": "non_pooled", "quantity": 5},
    )
    assert r.status_code == 201
    r = admin.post("/v1/admin/accounts/kanto/licenses/units/add", json={"quantity": 3})
    assert r.json()["totals"]["available"] == 8
    assert len(r.json()["lots"]) == 2
    short = issue(rpc, "kanto", "a.kanto.co.jp", validity_days=5)
    mid = issue(rpc, "kanto", "b.kanto.co.jp", validity_days=20, license="units")
    long = issue(rpc, "kanto", "c.kanto.co.jp", validity_days=100)
    assert [x.status_code for x in (short, mid, long)] == [201, 201, 201]
    revoked = rpc.post(f"/v1/certificates/{long.json()['serial']}/revoke", json={})
    assert revoked.status_code == 200
    # Whole days left go back, rounded down: 100 if the revocation fell in the second of
    # issuance, 99 once a second has passed (CI saw both).
    left = dt.datetime.fromisoformat(long.json()["not_after"]) + dt.timedelta(seconds=1)
    back = (left - dt.datetime.fromisoformat(revoked.json()["revoked_at"])) // dt.timedelta(days=1)
    assert back in (99, 100)

    inv = admin.get("/v1/admin/accounts/kanto/inventory").json()
    pooled, units = inv["pooled"], inv["non_pooled"]
    assert pooled["unit"] == "cert-days"
    assert pooled["purchased"] == 730
    assert pooled["used"] == 105 - back
    assert pooled["available"] == 625 + back
    assert (units["purchased"], units["used"], units["available"]) == (8, 1, 7)
    assert {lic["id"] for lic in inv["licenses"]} == {"pool", "units"}

    ledger = admin.get("/v1/admin/accounts/kanto/ledger").json()["entries"]
    assert [(e["license"], e["movement"], e["amount"]) for e in ledger] == [
        ("pool", "purchase", 730),
        ("units", "purchase", 5),
        ("units", "add", 3),
        ("pool", "consume", -5),
        ("units", "consume", -1),
        ("pool", "consume", -100),
        ("pool", "return", back),
    ]
    page = admin.get("/v1/admin/accounts/kanto/ledger?since=3&limit=2").json()
    assert [e["seq"] for e in page["entries"]] == [4, 5]
    assert page["next_since"] == 5

    certs = admin.get("/v1/admin/accounts/kanto/certificates").json()
    assert [c["names"] for c in certs["certificates"]] == [
        ["a.kanto.co.jp"],
        ["b.kanto.co.jp"],
        ["c.kanto.co.jp"],
    ]
    assert certs["expiring_in_10_days"] == [short.json()["serial"]]
    assert certs["expiring_in_30_days"] == [short.json()["serial"], mid.json()["serial"]]
    assert admin.get("/v1/admin/licenses/check").json()["ok"] is True
    schema = anonymous(base, ca).get("/v1/schema").json()["$defs"]
    assert {"LicenseIn", "InventoryView", "LedgerView", "AccountCertificates"} <= set(schema)


# 200 connections from one address: past the default per-address cap (64), which a
# portal that issues this much in parallel from one host raises (or uses the batch).
MANY_FROM_ONE = {
    "replace": [('tls_key = "tls/api.key"\n', 'tls_key = "tls/api.key"\n'
                 "max_connections_per_client = 256\n")]
}  # fmt: skip


@pytest.mark.parametrize("service", [MANY_FROM_ONE], indirect=True)
def test_200_simultaneous_issuances_against_100_units(service: Service) -> None:
    base, ca, _ = service
    admin = client(base, ca, "admin")
    open_account(admin, "kanto", {"id": "units", "kind": "non_pooled", "quantity": 100})
    secret = new_key(base, ca, "issuer", "kanto")["secret"]
    barrier = threading.Barrier(200)

    def one(i: int) -> httpx.Response:
        body = {"csr": csr(f"h{i}.kanto.co.jp"), "profile": "ov", "organization": "kanto"}
        with keyed(base, ca, secret) as rpc:
            barrier.wait(timeout=60)
            return rpc.post("/v1/certificates", json=body, timeout=120)

    with concurrent.futures.ThreadPoolExecutor(200) as pool:
        answers = list(pool.map(one, range(200)))
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [201] * 100 + [422] * 100
    assert {r.json()["error"] for r in answers if r.status_code == 422} == {"license_exhausted"}
    serials = {r.json()["serial"] for r in answers if r.status_code == 201}
    assert len(serials) == 100
    inv = admin.get("/v1/admin/accounts/kanto/inventory").json()["non_pooled"]
    assert (inv["purchased"], inv["used"], inv["available"]) == (100, 100, 0)
    ledger = admin.get("/v1/admin/accounts/kanto/ledger").json()["entries"]
    consumed = [e["serial"] for e in ledger if e["movement"] == "consume"]
    assert sorted(consumed) == sorted(serials)
    listed = admin.get("/v1/admin/accounts/kanto/certificates").json()["certificates"]
    assert {c["serial"] for c in listed} == serials
    check = admin.get("/v1/admin/licenses/check").json()
    assert check == {"ok": True, "licenses": 1, "ledger_entries": 101, "problems": []}


def test_kill_9_mid_stream_leaves_the_books_whole(service: Service) -> None:
    """A stream of issuances from 16 clients; the service is killed with SIGKILL while
    they run. Every certificate answered 201 must be in the store with its consumption,
    and the store must hold no consumption without its certificate nor the reverse."""
    base, ca, proc = service
    admin = client(base, ca, "admin")
    open_account(admin, "kanto", {"id": "units", "kind": "non_pooled", "quantity": 100000})
    secret = new_key(base, ca, "issuer", "kanto")["secret"]
    acknowledged: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def stream(worker: int) -> None:
        with keyed(base, ca, secret) as rpc:
            for i in range(2000):  # bounded; the kill ends it long before
                if stop.is_set():
                    return
                try:
                    r = issue(rpc, "kanto", f"w{worker}-{i}.kanto.co.jp")
                except httpx.TransportError:
                    return
                if r.status_code == 201:
                    with lock:
                        acknowledged.append(r.json()["serial"])

    threads = [threading.Thread(target=stream, args=(w,)) for w in range(16)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while len(acknowledged) < 60 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=20)
    stop.set()
    for t in threads:
        t.join(timeout=60)
    assert len(acknowledged) >= 60

    c = str(ca.config_path)
    result = hanko("licenses", "check", "-c", c, "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    certs = hanko("licenses", "certificates", "-c", c, "kanto", "--json", check=True)
    import json

    listed = [x["serial"] for x in json.loads(certs.stdout)["certificates"]]
    stored = set(listed)
    assert set(acknowledged) <= stored  # nothing acknowledged was lost
    inv = json.loads(hanko("licenses", "inventory", "-c", c, "kanto", "--json", check=True).stdout)
    if inv["non_pooled"]["used"] != len(stored):
        # Seen once in CI (79 units used, 75 certificates); kept to explain a next time.
        ledger = hanko("licenses", "ledger", "-c", c, "kanto", "--json", "--limit", "10000")
        pytest.fail(
            f"{inv['non_pooled']['used']} units used, {len(stored)} certificates "
            f"({len(listed)} listed, {len(acknowledged)} acknowledged); "
            f"inventory {inv['non_pooled']}; ledger {ledger.stdout}"
        )
    # What was in flight at the kill is either wholly there or wholly absent.
    assert len(stored) - len(acknowledged) < 2048


@pytest.fixture(autouse=True)
def _no_orphans(service: Service) -> Any:
    yield
    _, _, proc = service
    if proc.poll() is None:
        return
    # After a kill -9 the service's workers must go by themselves.
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        left = subprocess.run(
            ["pgrep", "-f", str(service[1].config_path.parent)],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.split()
        if not left:
            return
        time.sleep(0.2)
    pytest.fail(f"processes outlived the killed service: {left}")
