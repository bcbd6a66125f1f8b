"""A responder host (`hanko responder`, from a Redis replica, no store or HSM) answers
for two issuers at once: OCSP for an ECDSA and an RSA intermediate's certificates
(openssl, verified against each chain), each issuer's CRL folder and certificate."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.conftest import DevCA, client, free_port, hanko, paying_org, serving
from tests.core.cmd.test_issuers import ec_csr, rsa_csr
from tests.ocsp.status.test_redis_mirror import HOSTS, Responder, until
from tests.redis_server import RedisServer


def status(base: str, leaf: x509.Certificate, issuer: Path, root: Path, tmp: Path) -> str:
    pem = tmp / f"{leaf.serial_number:x}.pem"
    pem.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    chain = tmp / f"{issuer.stem}-chain.pem"
    chain.write_bytes(root.read_bytes() + issuer.read_bytes())
    out = subprocess.run(
        ["openssl", "ocsp", "-issuer", str(issuer), "-cert", str(pem), "-url", f"{base}/ocsp",
         "-CAfile", str(chain), "-no_nonce"],
        capture_output=True, text=True, check=False, timeout=30,
    )  # fmt: skip
    report = out.stdout + out.stderr
    for word in ("good", "revoked"):
        if "Response verify OK" in report and f"{pem}: {word}" in report:
            return word
    return report.strip()


@pytest.mark.slow
def test_a_responder_host_answers_for_two_issuers(fresh_ca: DevCA, tmp_path: Path) -> None:
    ca = fresh_ca
    hanko("ca", "issuer", "create", "-c", str(ca.config_path), "--name", "r1", "--key-type",
          "rsa-2048", check=True)  # fmt: skip
    hanko("ca", "issuer", "activate", "-c", str(ca.config_path), "r1", check=True)
    root = ca.directory / "ca" / "root.pem"
    issuers = {"e1": ca.directory / "ca" / "issuing.pem",
               "r1": ca.directory / "ca" / "issuers" / "r1.pem"}  # fmt: skip
    primary = RedisServer(tmp_path / "primary")
    replica = RedisServer(tmp_path / "replica", replica_of=primary)
    responder: Responder | None = None
    try:
        with serving(ca, f'\n[replication]\nredis = "{primary.url}"\n') as (base, _, _p):
            paying_org(client(base, ca, "admin"), "acme")
            rpc = client(base, ca, "rpc", "acme")
            leaves: dict[str, x509.Certificate] = {}
            for kind, make in (("e1", ec_csr), ("r1", rsa_csr)):
                r = rpc.post(
                    "/v1/certificates",
                    json={"csr": make(f"{kind}.example.co.jp"), "profile": "ov",
                          "organization": "acme"},
                )  # fmt: skip
                assert r.status_code == 201, r.text
                leaves[kind] = x509.load_pem_x509_certificate(r.json()["certificate"].encode())
            responder = Responder(tmp_path, HOSTS[0], free_port(), replica)
            host: Any = responder
            for kind, leaf in leaves.items():
                until(
                    lambda k=kind, c=leaf: (
                        status(host.base, c, issuers[k], root, tmp_path) == "good"
                    ),
                    10,
                    f"{kind} good on the responder host",
                )
            r = rpc.post(
                f"/v1/certificates/{leaves['r1'].serial_number:x}/revoke",
                json={"reason": "keyCompromise"},
            )
            assert r.status_code == 200, r.text
            until(
                lambda: status(host.base, leaves["r1"], issuers["r1"], root, tmp_path) == "revoked",
                5,
                "r1's certificate revoked on the responder host",
            )
            assert status(host.base, leaves["e1"], issuers["e1"], root, tmp_path) == "good"
            hanko("crl", "build", "-c", str(ca.config_path), check=True)
            on_disk = {
                p.relative_to(ca.directory / "crl").as_posix(): p.read_bytes()
                for p in (ca.directory / "crl").glob("r1/*.crl")
            }
            assert on_disk, "r1's CRL folder"
            until(
                lambda: all(
                    httpx.get(f"{host.base}/crl/{name}", timeout=5).content == der
                    for name, der in on_disk.items()
                ),
                10,
                "r1's CRLs on the responder host",
            )
            cer = httpx.get(f"{host.base}/ca/r1.cer", timeout=5)
            assert cer.status_code == 200
            assert x509.load_der_x509_certificate(cer.content) == x509.load_pem_x509_certificate(
                issuers["r1"].read_bytes()
            )
    finally:
        if responder is not None:
            responder.close()
        replica.close()
        primary.close()
