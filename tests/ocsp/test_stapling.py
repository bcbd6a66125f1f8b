"""Stapling with a real nginx: it fetches hanko's response (ssl_stapling_responder) or
reads the file `hanko ocsp export` wrote (ssl_stapling_file), and `openssl s_client
-status` shows what a browser would get in the handshake.

nginx staples a fetched response only while it says "good" (it logs and drops any
other), so "revoked" is shown through the file-stapling server after a re-export."""

from __future__ import annotations

import base64
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID

from core.store.keys import serial_bytes
from tests.conftest import DevCA, free_ports, hanko

Ready = tuple[httpx.Client, httpx.Client, DevCA]
NAME = "www.example.co.jp"


def issue_with_key(rpc: httpx.Client, tmp: Path) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    (tmp / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    req = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, NAME)]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(NAME)]), critical=False)
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
        .decode()
    )
    r = rpc.post("/v1/certificates", json={"csr": req, "profile": "ov", "organization": "acme"})
    assert r.status_code == 201, r.text
    body = r.json()
    (tmp / "fullchain.pem").write_text(body["certificate"] + body["chain"])
    return x509.load_pem_x509_certificate(body["certificate"].encode())


def nginx_conf(tmp: Path, fetch_port: int, file_port: int, ocsp_url: str, staple: Path) -> Path:
    for d in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (tmp / d).mkdir(exist_ok=True)
    common = f"""
        ssl_certificate {tmp}/fullchain.pem;
        ssl_certificate_key {tmp}/key.pem;
        ssl_stapling on;
        ssl_stapling_verify on;
        ssl_trusted_certificate {tmp}/trust.pem;
        location / {{ return 200 "ok"; }}
    """
    conf = tmp / "nginx.conf"
    conf.write_text(f"""
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{fetch_port} ssl;
        server_name {NAME};
        ssl_stapling_responder {ocsp_url};
        {common}
    }}
    server {{
        listen 127.0.0.1:{file_port} ssl;
        server_name {NAME};
        ssl_stapling_file {staple};
        {common}
    }}
}}
""")
    return conf


def stapled(port: int, tmp: Path) -> str:
    out = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", NAME,
         "-status", "-CAfile", str(tmp / "trust.pem")],
        input="", capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    return out.stdout


def wait_for(port: int, tmp: Path, want: str, timeout: float = 20) -> str:
    """nginx fetches its staple in the background after the first handshake."""
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = stapled(port, tmp)
        if want in text:
            return text
        time.sleep(0.3)
    pytest.fail(f"no stapled response with {want!r}:\n{text}")


def test_nginx_staples_hanko_responses(ready: Ready, tmp_path: Path) -> None:
    rpc, _, ca = ready
    cert = issue_with_key(rpc, tmp_path)
    (tmp_path / "trust.pem").write_bytes(
        (ca.directory / "ca" / "root.pem").read_bytes()
        + (ca.directory / "ca" / "issuing.pem").read_bytes()
    )
    export = tmp_path / "staples"
    result = hanko("ocsp", "export", "-c", str(ca.config_path), "--out", str(export))
    assert result.returncode == 0, result.stderr
    # Named by the serial's octets, as openssl prints it: a leading zero nibble stays.
    staple = export / f"{serial_bytes(cert.serial_number).hex()}.der"
    assert staple.is_file()

    # The exported file holds the bytes the responder serves.
    issuer = x509.load_pem_x509_certificate((ca.directory / "ca" / "issuing.pem").read_bytes())
    req = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1()).build()
    b64 = base64.b64encode(req.public_bytes(serialization.Encoding.DER)).decode()
    served = httpx.get(f"http://{ca.config.ocsp.listen}/ocsp/{b64}").content
    assert served == staple.read_bytes()

    fetch_port, file_port = free_ports(2)
    conf = nginx_conf(
        tmp_path, fetch_port, file_port, f"http://{ca.config.ocsp.listen}/ocsp", staple
    )
    nginx = subprocess.Popen(
        ["nginx", "-p", str(tmp_path), "-c", str(conf), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        text = wait_for(file_port, tmp_path, "Cert Status: good")
        assert "OCSP Response Status: successful" in text
        text = wait_for(fetch_port, tmp_path, "Cert Status: good")
        # openssl prints the serial's octets: a leading 0 when the first is below 0x10.
        assert f"Serial Number: {serial_bytes(cert.serial_number).hex().upper()}" in text

        r = rpc.post(
            f"/v1/certificates/{cert.serial_number:x}/revoke", json={"reason": "keyCompromise"}
        )
        assert r.status_code == 200, r.text
        # Refresh: export again and reload. The file-stapling server then staples the
        # revoked response; the fetching one fetches it too, but nginx by design staples
        # only "good" responses and logs the others.
        result = hanko("ocsp", "export", "-c", str(ca.config_path), "--out", str(export))
        assert result.returncode == 0, result.stderr
        nginx.send_signal(signal.SIGHUP)
        text = wait_for(file_port, tmp_path, "Cert Status: revoked")
        assert "Revocation Reason: keyCompromise" in text
        deadline = time.monotonic() + 20
        log = ""
        while time.monotonic() < deadline and 'certificate status "revoked"' not in log:
            stapled(fetch_port, tmp_path)
            time.sleep(0.3)
            log = (tmp_path / "error.log").read_text()
        assert 'certificate status "revoked" in the OCSP response' in log
    finally:
        nginx.terminate()
        nginx.wait(timeout=30)
