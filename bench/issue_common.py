"""What both issuance benchmarks share (`hanko bench issue` and its `stores` section):
the subscriber CSR, a free port, the wrk script of a POST, and a temporary CA's
configuration with the operator's [signer] and [issuance] settings."""

from __future__ import annotations

import contextlib
import re
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from bench.proc_cpu import children_cpu, spent, tree_cpu
from bench.progress import Progress
from bench.wrk import run_wrk
from core.config import Config

BIN = Path(sys.executable).parent


def csr_pem(*names: str) -> str:
    """A subscriber's CSR (a fresh ECDSA P-256 key) for `names`, www.example.co.jp and
    example.co.jp when none are given."""
    names = names or ("www.example.co.jp", "example.co.jp")
    return (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
        )
        .sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
        .decode()
    )


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wrk_script(path: Path, body: bytes, token: str) -> None:
    text = body.decode()
    if "]==]" in text:
        raise ValueError("request body cannot be embedded in the wrk script")
    path.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = [==[{text}]==]\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "Bearer {token}"\n'
    )


PROGRESS = Progress("issue")


OCSP_ON = "[ocsp]\nenabled = true\n"
CAA_OFF = "[caa]\nenabled = false\n"


def configure(config: Path, base: Config, port: int) -> None:
    """The temporary CA's config with the operator's [signer] and [issuance] settings."""
    text = config.read_text().replace("127.0.0.1:8443", f"127.0.0.1:{port}")
    # Metrics stay on (their cost is part of what is measured), on a port of their own.
    text = text.replace("127.0.0.1:9464", f"127.0.0.1:{free_port()}")
    s = base.signer
    text = re.sub(r"(?m)^workers = .*$", f"workers = {s.workers}", text)
    text = re.sub(r"(?m)^batch_max = .*$", f"batch_max = {s.batch_max}", text)
    text = re.sub(r"(?m)^batch_delay = .*$", f'batch_delay = "{s.batch_delay.text}"', text)
    # `hanko init` writes an [ocsp] table: `enabled` goes first in it (each measurement
    # sets it, _RUNS).
    text = text.replace("\n[ocsp]\n", "\n" + OCSP_ON, 1)
    # CAA off: each measurement isolates one cost; CAA's is the caa section's (it turns
    # it on, with a resolver of its own).
    text = text.replace("\n[caa]\n", "\n" + CAA_OFF, 1)
    text += (
        f"\n[crl]\npartitions = {base.crl.partitions}\n"
        f'\n[issuance]\nlint = "{base.issuance.lint}"\n'
        f"lint_sample_rate = {base.issuance.lint_sample_rate}\n"
    )
    config.write_text(text)


def run_counted(
    root: int,
    url: str,
    script: Path,
    *,
    per_request: int,
    connections: int,
    seconds: float,
    others: dict[str, list[int]],
) -> dict[str, Any]:
    """One wrk run, with the CPU each role of `hanko serve` (and wrk, and each role of
    `others`: processes the server depends on, such as CT logs) spent on it."""

    def other_cpu() -> dict[str, float]:
        return {role: sum(tree_cpu(pid)["core"] for pid in pids) for role, pids in others.items()}

    before, wrk_before, others_before = tree_cpu(root), children_cpu(), other_cpu()
    start = time.monotonic()
    measured = run_wrk(url, script, connections=connections, seconds=seconds)
    wall = time.monotonic() - start
    cpu = spent(before, tree_cpu(root))
    cpu["wrk"] = children_cpu() - wrk_before
    cpu.update(spent(others_before, other_cpu()))
    certificates = measured["requests"] * per_request
    return {
        **measured,
        "certificates_per_s": round(measured["requests_per_s"] * per_request, 1),
        # CPU per certificate by role; wall is wrk's run plus its start and exit
        "cpu_us_per_certificate": {
            role: round(sec / certificates * 1e6, 1) if certificates else None
            for role, sec in sorted(cpu.items())
        },
        "cores_busy": round(sum(cpu.values()) / wall, 2),
    }


@contextlib.contextmanager
def serve_api(
    ca: Path, port: int, *, name: str, tls: bool = True
) -> Iterator[tuple[subprocess.Popen[bytes], httpx.Client, dict[str, str]]]:
    """`hanko serve` on `ca` (its log in serve-NAME.log next to it: a pipe nobody reads
    fills with the access log and blocks the server), up once /healthz answers: the
    process, a client of the API, and the admin token's header."""
    log_path = ca.parent / f"serve-{name}.log"
    with log_path.open("w") as log_file:
        server = subprocess.Popen(
            [str(BIN / "hanko"), "serve", "-c", str(ca / "hanko.toml")],
            stdout=subprocess.DEVNULL,
            stderr=log_file,
        )
    try:
        api = httpx.Client(
            base_url=f"{'https' if tls else 'http'}://127.0.0.1:{port}",
            verify=ssl.create_default_context(cafile=str(ca / "tls" / "internal-ca.pem")),
            timeout=60,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                if api.get("/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit(
                    f"hanko serve did not start: {log_path.read_text()[-2000:]}"
                    f"{(ca / 'hanko.toml').read_text()}"
                )
            time.sleep(0.2)
        admin = {"Authorization": f"Bearer {(ca / 'secrets/admin.token').read_text().strip()}"}
        yield server, api, admin
    finally:
        server.terminate()
        server.wait(timeout=30)


def start_logged(
    cmd: list[str], log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """A server whose output goes to a file: Pebble logs every request, and a pipe
    nobody reads would stop it once full."""
    with open(log, "wb") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)


def wait_up(url: str, ca_file: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, verify=ca_file, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
        if proc.poll() is not None:
            break
    raise SystemExit(f"{proc.args!r} did not start: {log.read_text(errors='replace')[-2000:]}")


def bench_organization(url: str, ca: Path, bundle: str, org: str = "bench") -> httpx.Client:
    """An account, a large pooled licence and an OV organization (all named `org`),
    made through the admin API; the admin client, for more."""
    token = (ca / "secrets" / "admin.token").read_text().strip()
    admin = httpx.Client(
        base_url=url, verify=bundle, timeout=30, headers={"Authorization": f"Bearer {token}"}
    )
    for path, body in (
        ("/v1/admin/accounts", {"id": org, "name": "Bench K.K."}),
        (
            f"/v1/admin/accounts/{org}/licenses",
            {"id": f"{org}-pool", "kind": "pooled", "quantity": 1_000_000, "years": 1},
        ),
        (
            "/v1/admin/organizations",
            {
                "id": org,
                "account": org,
                "level": "ov",
                "organization": "Bench K.K.",
                "country": "JP",
                "state": "Tokyo-to",
                "locality": "Chiyoda-ku",
            },
        ),
    ):
        admin.post(path, json=body).raise_for_status()
    return admin
