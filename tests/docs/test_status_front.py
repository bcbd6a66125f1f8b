"""docs/operations.md's nginx front for the status host, run as written in front of a
real status listener: OCSP GETs, CRLs and CA certificates are cached as their headers
say (a second fetch is a HIT with the same bytes), POSTed OCSP passes through, and a
stray path is 404."""

from __future__ import annotations

import base64
import os
import re
import subprocess
import time
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from tests.conftest import Service, client, free_ports, paying_org
from tests.ocsp.test_answers import issue

DOC = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


def front_config(tmp: Path, status: str, port: int) -> Path:
    found = re.search(r"<!-- status-front -->\n```nginx\n(.*?)```", DOC.read_text(), re.S)
    assert found is not None, "docs/operations.md lost its nginx block"
    block = (
        found.group(1)
        .replace("/var/cache/nginx/hanko", str(tmp / "cache"))
        .replace("server 127.0.0.1:8080;", f"server {status};")
        .replace("listen 80;", f"listen 127.0.0.1:{port};")
    )
    temp = " ".join(
        f"{d}_temp_path {tmp}/{d};" for d in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    conf = tmp / "nginx.conf"
    # Workers run as root only here: the test's folders are the test user's alone.
    user = "user root;\n" if os.geteuid() == 0 else ""
    conf.write_text(
        f"{user}pid {tmp}/nginx.pid;\nerror_log {tmp}/error.log;\n"
        "events { worker_connections 64; }\n"
        f"http {{\naccess_log off;\n{temp}\n{block}\n}}\n"
    )
    return conf


def twice(front: httpx.Client, path: str) -> tuple[httpx.Response, httpx.Response]:
    first = front.get(path)
    time.sleep(0.2)  # nginx writes the cache entry after the first answer
    return first, front.get(path)


def test_the_documented_front_caches_as_the_headers_say(service: Service, tmp_path: Path) -> None:
    base, ca, _ = service
    paying_org(client(base, ca, "admin"), "acme")
    cert = issue(client(base, ca, "rpc", "acme"))
    issuer = x509.load_pem_x509_certificate((ca.directory / "ca" / "issuing.pem").read_bytes())
    der = (
        ocsp.OCSPRequestBuilder()
        .add_certificate(cert, issuer, hashes.SHA1())  # noqa: S303 - OCSP CertIDs use SHA-1
        .build()
        .public_bytes(serialization.Encoding.DER)
    )
    (port,) = free_ports(1)
    conf = front_config(tmp_path, ca.config.ocsp.listen, port)
    nginx = subprocess.Popen(
        ["nginx", "-p", str(tmp_path), "-c", str(conf), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        front = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
        deadline = time.monotonic() + 10
        while True:
            try:
                front.get("/nowhere")
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, nginx.stderr.read() if nginx.stderr else ""
                time.sleep(0.1)
        direct = httpx.Client(base_url=f"http://{ca.config.ocsp.listen}", timeout=10)
        paths = [
            "/ca/issuing.cer",
            "/ca/root.cer",
            "/crl/0.crl",
            "/crl/root.crl",
            "/ocsp/" + base64.b64encode(der).decode(),
        ]
        for path in paths:
            first, second = twice(front, path)
            assert first.status_code == 200, (path, first.status_code)
            assert first.headers["x-cache-status"] == "MISS", path
            assert second.headers["x-cache-status"] == "HIT", path
            assert second.content == first.content == direct.get(path).content, path
        status = ocsp.load_der_ocsp_response(second.content).certificate_status
        assert status is ocsp.OCSPCertStatus.GOOD

        posted = front.post(
            "/ocsp", content=der, headers={"Content-Type": "application/ocsp-request"}
        )
        assert posted.status_code == 200
        assert "x-cache-status" not in posted.headers
        assert ocsp.load_der_ocsp_response(posted.content).certificate_status is status
        for stray in ("/", "/index.html", "/ca/", "/status"):
            assert front.get(stray).status_code == 404, stray
    finally:
        nginx.terminate()
        nginx.wait(timeout=30)
