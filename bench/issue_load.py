"""`hanko bench issue`: certificates per second through the signing RPC.

For an RSA-2048 and an ECDSA P-256 issuing CA (each made by `hanko init` in a temporary
folder, with the [signer] and [issuance] settings of the given configuration), in one run:
- the signer's raw ceiling: the same number of processes as signer workers calling
  python-pkcs11 sign() on the issuing key in a loop, nothing else;
- `hanko serve` on loopback, driven by wrk: POST /v1/certificates (one certificate per
  request) and POST /v1/certificates:batch (--batch certificates per request), first with
  license enforcement off, then on (every certificate takes a non-pooled unit and writes
  its ledger entry in its commit); the ratio on/off is what enforcement costs.
Every request issues a real certificate (new serial, durable commit). Subscriber keys are
ECDSA P-256; the CSR is the same in every request, which costs the server the same work.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from bench.signer_load import raw_ceiling
from bench.wrk import run_wrk
from core.config import Config, load_config
from core.wiring import worker_spec
from signer.algorithms import KeyType

BIN = Path(sys.executable).parent


def _csr() -> str:
    return (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "www.example.co.jp")]))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("www.example.co.jp"), x509.DNSName("example.co.jp")]
            ),
            critical=False,
        )
        .sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
        .decode()
    )


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _lua(path: Path, body: bytes, token: str) -> None:
    text = body.decode()
    if "]==]" in text:
        raise ValueError("request body cannot be embedded in the wrk script")
    path.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = [==[{text}]==]\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "Bearer {token}"\n'
    )


def _configure(config: Path, base: Config, port: int) -> None:
    """The temporary CA's config with the operator's [signer] and [issuance] settings."""
    text = config.read_text().replace("127.0.0.1:8443", f"127.0.0.1:{port}")
    s = base.signer
    text = re.sub(r"(?m)^workers = .*$", f"workers = {s.workers}", text)
    text = re.sub(r"(?m)^batch_max = .*$", f"batch_max = {s.batch_max}", text)
    text = re.sub(r"(?m)^batch_delay = .*$", f'batch_delay = "{s.batch_delay.text}"', text)
    text += (
        f"\n[issuance]\ncrl_partitions = {base.issuance.crl_partitions}\n"
        f'lint = "{base.issuance.lint}"\nlint_sample_rate = {base.issuance.lint_sample_rate}\n'
    )
    config.write_text(text)


def bench_key_type(
    base: Config,
    key_type: KeyType,
    *,
    seconds: float,
    connections: int,
    batch: int,
    batch_connections: int,
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="hanko-bench-issue-") as tmp:
        ca = Path(tmp) / "ca"
        subprocess.run(
            [str(BIN / "hanko"), "init", str(ca), "--key-type", key_type.value],
            check=True,
            capture_output=True,
        )
        port = _free_port()
        _configure(ca / "hanko.toml", base, port)
        cfg = load_config(ca / "hanko.toml")
        workers = cfg.signer.workers or os.cpu_count() or 1
        ceiling = raw_ceiling(
            worker_spec(cfg), cfg.ca.issuer_key_label, key_type.default_algorithm, workers, seconds
        )

        runs = {}
        for enforce in (False, True):
            config = ca / "hanko.toml"
            text = re.sub(r"(?ms)^\[licenses\]\nenforce = \w+\n", "", config.read_text())
            config.write_text(text + f"[licenses]\nenforce = {str(enforce).lower()}\n")
            runs["on" if enforce else "off"] = _measure(
                ca,
                port,
                enforce=enforce,
                seconds=seconds,
                connections=connections,
                batch=batch,
                batch_connections=batch_connections,
            )
    # A certificate is one signature, plus one "good" OCSP response per CertID hash when
    # pre-signing is on: the signer's share of its ceiling counts them all.
    per_cert = 1 + (len(cfg.ocsp.cert_id_hashes) if cfg.issuance.ocsp else 0)
    report: dict[str, Any] = {
        "raw_ceiling_signatures_per_s": round(ceiling, 1),
        "workers": workers,
        "signatures_per_certificate": per_cert,
    }
    for mode in ("single", "batch"):
        for state, measured in runs.items():
            m = measured[mode]
            report[f"{mode}_licenses_{state}"] = {
                **m,
                "of_ceiling": round(m["certificates_per_s"] / ceiling, 3),
                "signatures_of_ceiling": round(m["certificates_per_s"] * per_cert / ceiling, 3),
            }
        off = runs["off"][mode]["certificates_per_s"]
        report[f"{mode}_enforcement_ratio"] = (
            round(runs["on"][mode]["certificates_per_s"] / off, 3) if off else None
        )
    return report


def _measure(
    ca: Path,
    port: int,
    *,
    enforce: bool,
    seconds: float,
    connections: int,
    batch: int,
    batch_connections: int,
) -> dict[str, Any]:
    """`hanko serve` on `ca`; an organization (with enforcement: under an account whose
    default license is a million non-pooled units, so every certificate takes one and
    writes its ledger entry); wrk on the single and the batch endpoint."""
    server = subprocess.Popen(
        [str(BIN / "hanko"), "serve", "-c", str(ca / "hanko.toml")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    tmp = ca.parent
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                detail = server.stderr.read() if server.stderr else ""
                raise SystemExit(f"hanko serve did not start: {detail}")
            time.sleep(0.2)
        admin = {"Authorization": f"Bearer {(ca / 'secrets/admin.token').read_text().strip()}"}
        rpc_token = (ca / "secrets/rpc.token").read_text().strip()
        org_id = "bench-on" if enforce else "bench-off"
        if enforce:
            httpx.post(
                f"{url}/v1/admin/accounts", headers=admin, json={"id": org_id, "name": "Bench"}
            ).raise_for_status()
            httpx.post(
                f"{url}/v1/admin/accounts/{org_id}/licenses",
                headers=admin,
                json={"id": "units", "kind": "non_pooled", "quantity": 1_000_000},
            ).raise_for_status()
        httpx.post(
            f"{url}/v1/admin/organizations",
            headers=admin,
            json={
                "id": org_id,
                "level": "ov",
                "organization": "Hanko Bench K.K.",
                "country": "JP",
                "state": "Tokyo-to",
                "locality": "Chiyoda-ku",
                **({"account": org_id} if enforce else {}),
            },
        ).raise_for_status()
        httpx.post(
            f"{url}/v1/admin/organizations/{org_id}/domains",
            headers=admin,
            json={"domain": "example.co.jp", "method": "dns-txt"},
        ).raise_for_status()
        item = {"csr": _csr(), "profile": "ov", "organization": org_id}
        single_lua, batch_lua = tmp / "single.lua", tmp / "batch.lua"
        _lua(single_lua, json.dumps(item).encode(), rpc_token)
        _lua(batch_lua, json.dumps({"requests": [item] * batch}).encode(), rpc_token)
        # warm up: the first requests load modules and open the signer pipes
        for _ in range(20):
            httpx.post(
                f"{url}/v1/certificates",
                json=item,
                headers={"Authorization": f"Bearer {rpc_token}"},
                timeout=30,
            ).raise_for_status()
        single = run_wrk(
            f"{url}/v1/certificates", single_lua, connections=connections, seconds=seconds
        )
        batched = run_wrk(
            f"{url}/v1/certificates:batch",
            batch_lua,
            connections=batch_connections,
            seconds=seconds,
        )
    finally:
        server.terminate()
        server.wait(timeout=30)
    return {
        "single": {
            **single,
            "certificates_per_s": round(single["requests_per_s"], 1),
            "connections": connections,
        },
        "batch": {
            **batched,
            "certificates_per_s": round(batched["requests_per_s"] * batch, 1),
            "batch_size": batch,
            "connections": batch_connections,
        },
    }


def run_from_cli(args: argparse.Namespace) -> int:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: run scripts/dev.sh setup (apt-get install wrk)")
    base = load_config(args.config)
    report: dict[str, Any] = {"seconds": args.seconds, "lint": base.issuance.lint, "key_types": {}}
    for name in ("rsa-2048", "ecdsa-p256"):
        report["key_types"][name] = bench_key_type(
            base,
            KeyType(name),
            seconds=args.seconds,
            connections=args.connections,
            batch=args.batch,
            batch_connections=args.batch_connections,
        )
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"issuance benchmark: pkilint {report['lint']}, {args.seconds:g}s per measurement")
    for name, r in report["key_types"].items():
        print(
            f"\n{name} issuing CA: signer raw ceiling {r['raw_ceiling_signatures_per_s']:.0f}"
            f" signatures/s ({r['workers']} processes);"
            f" {r['signatures_per_certificate']} signatures per certificate"
        )
        for mode in ("single", "batch"):
            for state in ("off", "on"):
                m = r[f"{mode}_licenses_{state}"]
                extra = f", {m['batch_size']} per request" if mode == "batch" else ""
                print(
                    f"  {mode:<6} licenses {state:<3} {m['certificates_per_s']:>8.0f}"
                    f" certificates/s ({m['of_ceiling']:.0%} of ceiling; its signatures"
                    f" {m['signatures_of_ceiling']:.0%}), p50"
                    f" {m['p50_ms']:.1f} ms, p99 {m['p99_ms']:.1f} ms per request,"
                    f" {m['connections']} connections{extra}, non-2xx {m['non_2xx']:.0f}"
                )
            ratio = r[f"{mode}_enforcement_ratio"]
            print(f"  {mode:<6} with enforcement / without: {ratio:.1%}" if ratio else "")
    return 0
