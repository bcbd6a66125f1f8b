"""`hanko backup` while `hanko serve` issues, then `hanko restore` into a new store:
every certificate acknowledged before the backup began is there, the licence books
balance, and a restore refuses a store with data in it and a damaged file."""

from __future__ import annotations

import json
import os
import shutil
import signal
import tarfile
import threading
import time
from pathlib import Path

from core.issuance.pem import serial_from_hex
from core.store import LmdbStore
from tests.conftest import Service, client, csr, hanko, paying_org


def test_backup_while_issuing_restores_every_acknowledged_certificate(
    service: Service, tmp_path: Path
) -> None:
    base, ca, proc = service
    cfg = str(ca.config_path)
    paying_org(client(base, ca, "admin"), "acme")
    rpc = client(base, ca, "rpc", "acme")
    acked: list[tuple[float, str]] = []
    stop = threading.Event()
    failures: list[str] = []

    def issue_on() -> None:
        n = 0
        while not stop.is_set():
            body = {"requests": [{"csr": csr(f"b{n}-{i}.example.co.jp"), "profile": "ov",
                                  "organization": "acme"} for i in range(20)]}  # fmt: skip
            n += 1
            r = rpc.post("/v1/certificates:batch", json=body)
            if r.status_code != 200:
                failures.append(r.text)
                return
            at = time.monotonic()
            acked.extend((at, item["result"]["serial"]) for item in r.json()["results"])

    worker = threading.Thread(target=issue_on)
    worker.start()
    try:
        while len(acked) < 100:
            assert not failures, failures
            time.sleep(0.05)
        began = time.monotonic()
        before = {serial for at, serial in acked if at < began}
        out = tmp_path / "backups" / "hanko.backup"
        done = hanko("backup", "-c", cfg, "--out", str(out), "--json")
        assert done.returncode == 0, done.stderr
        time.sleep(0.3)  # issuance goes on past the backup
    finally:
        stop.set()
        worker.join(timeout=60)
    assert not failures, failures
    assert len(acked) > len(before)
    manifest = json.loads(done.stdout)
    assert manifest["entries"]["certs"] >= len(before)
    assert os.stat(out).st_mode & 0o777 == 0o600
    with tarfile.open(out) as tar:
        assert sorted(tar.getnames()) == ["MANIFEST.json", "data.mdb"]

    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    store_dir = ca.directory / "lmdb"
    refused = hanko("restore", "-c", cfg, "--from", str(out))
    assert refused.returncode == 1
    assert "not empty" in refused.stderr
    assert refused.stderr.count("\n") == 1

    shutil.move(store_dir, tmp_path / "lost")
    damaged = tmp_path / "damaged.backup"
    raw = bytearray(out.read_bytes())
    with tarfile.open(out) as tar:
        member = tar.getmember("data.mdb")
    raw[member.offset_data + member.size // 2] ^= 0xFF
    damaged.write_bytes(bytes(raw))
    bad = hanko("restore", "-c", cfg, "--from", str(damaged))
    assert bad.returncode == 1
    assert "checksum" in bad.stderr
    assert not (store_dir / "data.mdb").exists()

    restored = hanko("restore", "-c", cfg, "--from", str(out))
    assert restored.returncode == 0, restored.stderr
    assert os.stat(store_dir / "data.mdb").st_mode & 0o777 == 0o600
    check = hanko("licenses", "check", "-c", cfg)
    assert check.returncode == 0, check.stdout + check.stderr
    store = LmdbStore(store_dir, readonly=True)
    try:
        with store.read() as txn:
            missing = [s for s in before if txn.get_cert(serial_from_hex(s)) is None]
    finally:
        store.close()
    assert missing == []
