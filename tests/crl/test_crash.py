"""kill -9 during CRL builds: the published CRL stays whole and numbers keep growing."""

from __future__ import annotations

import datetime as dt
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from cryptography import x509

from core.base.reasons import RevocationReason
from core.store import WriteTxn, serial_bytes
from core.store.configured import open_store
from crl.encoder import revoked_entry
from crl.publisher import counter_name
from tests.conftest import BIN, DevCA, hanko, openssl_crl_check

ROOT = Path(__file__).resolve().parents[2]
ENTRIES = 150_000


def crl_number(path: Path) -> int:
    crl = x509.load_der_x509_crl(path.read_bytes())
    return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number


def verified(ca: DevCA, path: Path) -> bool:
    out = openssl_crl_check(path, ca.directory / "ca" / "issuing.pem")
    return out.returncode == 0 and "verify OK" in out.stdout + out.stderr


def test_kill_9_mid_build(fresh_ca: DevCA) -> None:
    text = fresh_ca.config_path.read_text()
    fresh_ca.config_path.write_text(text + "\n[crl]\npartitions = 1\n")
    cfg = fresh_ca.config
    issuer = x509.load_pem_x509_certificate(cfg.path(cfg.issuers()[0].config.cert).read_bytes())
    key_id = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    at = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    store = open_store(cfg)
    try:

        def fill(txn: WriteTxn) -> None:
            for i in range(ENTRIES):
                serial = serial_bytes((1 << 120) + i * 7919)
                txn.add_crl_entry(
                    key_id,
                    0,
                    serial,
                    not_after=2_000_000_000,
                    entry_der=revoked_entry(
                        int.from_bytes(serial, "big"), at, RevocationReason.KEY_COMPROMISE
                    ),
                    at=1_790_000_000,
                )

        store.write(fill)
    finally:
        store.close()
    published = cfg.path(cfg.crl.publish_dir) / "0.crl"
    hanko("crl", "-c", str(fresh_ca.config_path), check=True)
    first = published.read_bytes()
    assert len(x509.load_der_x509_crl(first)) == ENTRIES
    numbers = [crl_number(published)]

    # 1. Killed after taking its number, before writing: the old CRL is untouched.
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.crl.build_child", str(fresh_ca.config_path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "signing"
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert published.read_bytes() == first

    # 2. Killed at random moments of whole `hanko crl --all` runs (start-up, the number
    # commit, reading, hashing, signing, writing the file).
    rng = random.Random(20261121)
    for _ in range(6):
        run = subprocess.Popen(
            [str(BIN / "hanko"), "crl", "--all", "-c", str(fresh_ca.config_path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.8, 2.5))
        run.kill()
        run.wait()
        assert verified(fresh_ca, published)
        assert len(x509.load_der_x509_crl(published.read_bytes())) == ENTRIES
        numbers.append(crl_number(published))
    assert numbers == sorted(numbers)

    # 3. The next build's number is above every number ever taken, published or not.
    store = open_store(cfg, readonly=True)
    try:
        with store.read() as txn:
            taken = txn.counter(counter_name(key_id, 0))
    finally:
        store.close()
    assert taken > numbers[0]  # the killed builds did take numbers
    hanko("crl", "--all", "-c", str(fresh_ca.config_path), check=True)
    assert crl_number(published) == taken + 1
    assert verified(fresh_ca, published)
    assert not list(published.parent.glob(".*.tmp"))
