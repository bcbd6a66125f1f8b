"""What both issuance benchmarks share (`hanko bench issue` and its `stores` section):
the subscriber CSR, a free port, the wrk script of a POST, and a temporary CA's
configuration with the operator's [signer] and [issuance] settings."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from bench.progress import Progress
from core.config import Config

BIN = Path(sys.executable).parent


def csr_pem() -> str:
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
    text = text.replace("\n[ocsp]\n", "\n[ocsp]\nenabled = true\n", 1)
    text += (
        f"\n[crl]\npartitions = {base.crl.partitions}\n"
        f'\n[issuance]\nlint = "{base.issuance.lint}"\n'
        f"lint_sample_rate = {base.issuance.lint_sample_rate}\n"
    )
    config.write_text(text)
