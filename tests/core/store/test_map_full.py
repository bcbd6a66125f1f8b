"""A store that reaches `[store] max_map_size`, against a real `hanko serve`: the map
grows by itself up to the limit; past it every write answers 503 store_full with one
log line, reads go on, /readyz is not ready; with the limit raised issuance resumes and
every acknowledged certificate is still there."""

from __future__ import annotations

import signal
import subprocess
import time

import pytest
from acme import messages

from tests.conftest import (
    BIN,
    DevCA,
    anonymous,
    client,
    csr,
    free_port,
    keyed,
    new_key,
    paying_org,
)
from tests.core.api.test_acme import Acme, make_eab

SMALL = '[store]\npath = "lmdb"\nmap_size = "1MiB"\nmax_map_size = "2MiB"\n'


def start(ca: DevCA) -> subprocess.Popen[str]:
    # Its log goes to a file: a pipe nobody reads fills with access-log lines (one per
    # issuance) and blocks the server.
    log = (ca.directory / "serve.log").open("a")
    proc = subprocess.Popen(
        [str(BIN / "hanko"), "serve", "-c", str(ca.config_path)],
        stdout=subprocess.PIPE, stderr=log, text=True,
    )  # fmt: skip
    log.close()
    assert proc.stdout is not None
    assert "serving the API" in proc.stdout.readline()
    return proc


def stop(proc: subprocess.Popen[str], ca: DevCA) -> str:
    """Stop it; what it logged since start()."""
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    log = ca.directory / "serve.log"
    text = log.read_text()
    log.unlink()
    return text


@pytest.fixture
def small_store(fresh_ca: DevCA) -> tuple[str, DevCA]:
    api = free_port()
    text = fresh_ca.config_path.read_text()
    text = text.replace("127.0.0.1:8443", f"127.0.0.1:{api}")
    text = text.replace("127.0.0.1:8080", f"127.0.0.1:{free_port()}")
    text = text.replace("127.0.0.1:9464", f"127.0.0.1:{free_port()}")
    head, _, rest = text.partition("[store]")
    _, _, rest = rest.partition("\n[")
    fresh_ca.config_path.write_text(head + SMALL + "\n[" + rest)
    return f"https://127.0.0.1:{api}", fresh_ca


def test_a_full_store_refuses_writes_keeps_reads_and_loses_nothing(
    small_store: tuple[str, DevCA],
) -> None:
    base, ca = small_store
    data = ca.config.path(ca.config.store.path) / "data.mdb"
    proc = start(ca)
    try:
        admin = client(base, ca, "admin")
        paying_org(admin, "acme")
        rpc = keyed(base, ca, new_key(base, ca, "issuer", "acme")["secret"])
        acme = Acme(base, ca)  # an ACME account made while there is room
        acme.register(make_eab(base, ca))
        acknowledged: list[str] = []
        refusal = None
        for i in range(3000):  # ~2 KiB of records each: full long before this
            r = rpc.post(
                "/v1/certificates",
                json={"csr": csr(f"h{i}.example.co.jp"), "profile": "ov", "organization": "acme"},
            )
            if r.status_code != 201:
                refusal = r
                break
            acknowledged.append(r.json()["serial"])
        assert refusal is not None, "the store never filled"
        assert refusal.status_code == 503, refusal.text
        assert refusal.json()["error"] == "store_full", refusal.text
        assert refusal.headers["retry-after"].isdigit()
        # The operator's business (the log's), not the client's: no sizes, paths, keys.
        assert "max_map_size" not in refusal.json()["detail"]
        # ACME: a problem document telling the client to try again later, never
        # "malformed" (which tells it the request itself is wrong).
        with pytest.raises(messages.Error) as refused:
            acme.client.new_order(csr("fresh.example.co.jp").encode())
        assert refused.value.typ == "urn:ietf:params:acme:error:serverInternal"
        # It grew from 1 MiB up to its limit before refusing.
        assert data.stat().st_size > 1 << 20
        # Each single issuance is its own commit; copy-on-write pages that the
        # responders' read snapshots still pin cost ~45 KiB of map a certificate here,
        # so a 2 MiB map holds a few dozen (46 to 55 seen, by timing).
        assert len(acknowledged) > 30

        # Every write path refuses the same way; reads go on.
        serial = acknowledged[0]
        r = rpc.post(f"/v1/certificates/{serial}/revoke", json={"reason": "superseded"})
        assert (r.status_code, r.json()["error"]) == (503, "store_full")
        r = admin.post("/v1/admin/accounts", json={"id": "later", "name": "Later K.K."})
        assert (r.status_code, r.json()["error"]) == (503, "store_full")
        r = admin.post("/v1/admin/keys", json={"role": "reader", "accounts": ["acme"]})
        assert (r.status_code, r.json()["error"]) == (503, "store_full")
        got = rpc.get(f"/v1/certificates/{serial}")
        assert got.status_code == 200
        assert got.json()["status"] == "good"
        assert admin.get("/v1/admin/accounts/acme/inventory").status_code == 200
        public = anonymous(base, ca)
        assert public.get("/healthz").status_code == 200  # alive, only not ready
        ready = public.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["store_writable"] is False
    finally:
        log = stop(proc, ca)
    assert "Traceback" not in log
    assert "MapFullError" not in log
    assert sum("store is full" in line for line in log.splitlines()) == 1, log
    assert "max_map_size" in log

    # The operator raises the limit: issuance resumes, nothing acknowledged was lost.
    text = ca.config_path.read_text().replace('max_map_size = "2MiB"', 'max_map_size = "64MiB"')
    ca.config_path.write_text(text)
    proc = start(ca)
    try:
        rpc = keyed(base, ca, new_key(base, ca, "issuer", "acme")["secret"])
        r = rpc.post(
            "/v1/certificates",
            json={"csr": csr("after.example.co.jp"), "profile": "ov", "organization": "acme"},
        )
        assert r.status_code == 201, r.text
        for serial in acknowledged:
            assert rpc.get(f"/v1/certificates/{serial}").status_code == 200, serial
        deadline = time.monotonic() + 10
        while anonymous(base, ca).get("/readyz").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        listed = client(base, ca, "admin").get("/v1/admin/accounts/acme/certificates").json()
        assert {c["serial"] for c in listed["certificates"]} >= set(acknowledged)
    finally:
        stop(proc, ca)
