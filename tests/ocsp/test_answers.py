"""The OCSP responder of a running `hanko serve`, with real clients: openssl ocsp
(POST), curl (GET), GnuTLS ocsptool, and pkilint on what it serves."""

from __future__ import annotations

import base64
import random
import socket
import subprocess
import time
import urllib.parse
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from core.base.der import read_tlv, sequence
from tests.conftest import BIN, DevCA, csr, free_port, lint_ocsp, serve_log

Ready = tuple[httpx.Client, httpx.Client, DevCA]


def ocsp_base(ca: DevCA) -> str:
    return f"http://{ca.config.ocsp.listen}"


def issue(rpc: httpx.Client, name: str = "www.example.co.jp") -> x509.Certificate:
    r = rpc.post(
        "/v1/certificates", json={"csr": csr(name), "profile": "ov", "organization": "acme"}
    )
    assert r.status_code == 201, r.text
    return x509.load_pem_x509_certificate(r.json()["certificate"].encode())


def files(ca: DevCA, cert: x509.Certificate, tmp: Path) -> tuple[Path, Path, Path]:
    leaf = tmp / "leaf.pem"
    leaf.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    issuer = ca.directory / "ca" / "issuing.pem"
    chain = tmp / "chain.pem"
    chain.write_bytes((ca.directory / "ca" / "root.pem").read_bytes() + issuer.read_bytes())
    return leaf, issuer, chain


def openssl_ocsp(ca: DevCA, leaf: Path, issuer: Path, chain: Path) -> str:
    """POST through `openssl ocsp`; returns its report (verification included)."""
    out = subprocess.run(
        [
            "openssl", "ocsp",
            "-issuer", str(issuer), "-cert", str(leaf),
            "-url", f"{ocsp_base(ca)}/ocsp", "-CAfile", str(chain), "-no_nonce",
        ],
        capture_output=True, text=True, check=False, timeout=30,
    )  # fmt: skip
    return out.stdout + out.stderr


def request_der(
    cert: x509.Certificate, issuer: x509.Certificate, alg: hashes.HashAlgorithm
) -> bytes:
    return (
        ocsp.OCSPRequestBuilder()
        .add_certificate(cert, issuer, alg)
        .build()
        .public_bytes(serialization.Encoding.DER)
    )


def curl_get(url: str, out: Path) -> dict[str, str]:
    head = subprocess.run(
        ["curl", "-sS", "-D", "-", "-o", str(out), url],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout  # fmt: skip
    headers = {}
    for line in head.splitlines()[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    headers[":status"] = head.split()[1]
    return headers


def test_good_then_revoked_with_openssl_curl_gnutls_and_pkilint(
    ready: Ready, tmp_path: Path
) -> None:
    rpc, _, ca = ready
    cert = issue(rpc)
    leaf, issuer_pem, chain = files(ca, cert, tmp_path)
    issuer = x509.load_pem_x509_certificate(issuer_pem.read_bytes())

    report = openssl_ocsp(ca, leaf, issuer_pem, chain)
    assert f"{leaf}: good" in report
    assert "Response verify OK" in report

    # GET with the request URL-encoded in the path (RFC 6960 A.1), SHA-1 and SHA-256.
    for alg in (hashes.SHA1(), hashes.SHA256()):
        b64 = base64.b64encode(request_der(cert, issuer, alg)).decode()
        out = tmp_path / "get.der"
        headers = curl_get(f"{ocsp_base(ca)}/ocsp/{urllib.parse.quote(b64, safe='')}", out)
        assert headers[":status"] == "200"
        assert headers["content-type"] == "application/ocsp-response"
        cc = headers["cache-control"]
        assert "public" in cc
        assert "no-transform" in cc
        assert "must-revalidate" in cc
        resp = ocsp.load_der_ocsp_response(out.read_bytes())
        assert resp.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
        assert resp.certificate_status is ocsp.OCSPCertStatus.GOOD
        assert resp.serial_number == cert.serial_number
        assert isinstance(resp.hash_algorithm, type(alg))
        max_age = int(cc.split("max-age=")[1].split(",")[0])
        assert 0 < max_age <= (resp.next_update_utc - resp.this_update_utc).total_seconds()
        assert headers["last-modified"]
        assert headers["expires"]
        assert headers["etag"]
        assert lint_ocsp(out) == []
        # The unencoded form works too, and a matching If-None-Match gets 304.
        r = httpx.get(f"{ocsp_base(ca)}/ocsp/{b64}")
        assert r.content == out.read_bytes()
        r304 = httpx.get(f"{ocsp_base(ca)}/ocsp/{b64}", headers={"If-None-Match": headers["etag"]})
        assert r304.status_code == 304
        assert r304.content == b""

    gnutls = subprocess.run(
        [
            "ocsptool", f"--ask={ocsp_base(ca)}/ocsp", "--load-cert", str(leaf),
            "--load-issuer", str(issuer_pem), "--outfile", str(tmp_path / "gnutls.der"),
        ],
        capture_output=True, text=True, check=False, timeout=30,
    )  # fmt: skip
    assert gnutls.returncode == 0, gnutls.stdout + gnutls.stderr
    verify = subprocess.run(
        [
            "ocsptool", "-e", "--load-signer", str(issuer_pem),
            "--infile", str(tmp_path / "gnutls.der"),
        ],
        capture_output=True, text=True, check=False, timeout=30,
    )  # fmt: skip
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "Verifying OCSP Response: Success" in verify.stdout + verify.stderr

    r = rpc.post(
        f"/v1/certificates/{cert.serial_number:x}/revoke", json={"reason": "keyCompromise"}
    )
    assert r.status_code == 200, r.text
    # The promise: "revoked" within 1 s of the revoke call returning, from every
    # responder process. Each renews its store snapshot every 100 ms on its own clock,
    # so right after one of them answers "revoked" another may still say "good" for up
    # to 100 ms (CI once polled until openssl saw "revoked", then curl got "good").
    time.sleep(1.0)
    report = openssl_ocsp(ca, leaf, issuer_pem, chain)
    assert f"{leaf}: revoked" in report, report
    assert "Reason: keyCompromise" in report
    assert "Response verify OK" in report
    b64 = base64.b64encode(request_der(cert, issuer, hashes.SHA1())).decode()
    out = tmp_path / "revoked.der"
    curl_get(f"{ocsp_base(ca)}/ocsp/{b64}", out)
    resp = ocsp.load_der_ocsp_response(out.read_bytes())
    assert resp.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert resp.revocation_reason is x509.ReasonFlags.key_compromise
    assert lint_ocsp(out) == []
    for _ in range(8):  # new connections: SO_REUSEPORT spreads them over the processes
        again = ocsp.load_der_ocsp_response(httpx.get(f"{ocsp_base(ca)}/ocsp/{b64}").content)
        assert again.certificate_status is ocsp.OCSPCertStatus.REVOKED


def test_unknown_serial_and_foreign_issuer_are_unauthorized(ready: Ready, tmp_path: Path) -> None:
    rpc, _, ca = ready
    cert = issue(rpc)
    issuer = x509.load_pem_x509_certificate((ca.directory / "ca" / "issuing.pem").read_bytes())
    # A serial never issued, same issuer: build a CertID by hand through a twin cert.
    from cryptography.hazmat.primitives.asymmetric import ec

    from tests.ocsp.test_codec import _cert  # a software certificate helper

    key = ec.generate_private_key(ec.SECP256R1())
    stranger = _cert("stranger", key, issuer.subject, key)
    for subject, iss in ((stranger, issuer), (cert, stranger)):
        r = httpx.post(
            f"{ocsp_base(ca)}/ocsp",
            content=request_der(subject, iss, hashes.SHA1()),
            headers={"Content-Type": "application/ocsp-request"},
        )
        assert r.status_code == 200
        resp = ocsp.load_der_ocsp_response(r.content)
        assert resp.response_status is ocsp.OCSPResponseStatus.UNAUTHORIZED


def raw_exchange(ca: DevCA, data: bytes, *, timeout: float = 10) -> bytes:
    """Send bytes on a fresh connection; return everything until the server closes or
    goes quiet."""
    host, port = ca.config.ocsp.listen.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except TimeoutError:
            pass
        return b"".join(chunks)


def post(der: bytes, *, extra: bytes = b"", keep_alive: bool = False) -> bytes:
    conn = b"" if keep_alive else b"Connection: close\r\n"
    return (
        b"POST /ocsp HTTP/1.1\r\nHost: ocsp\r\nContent-Type: application/ocsp-request\r\n"
        + conn
        + extra
        + b"Content-Length: %d\r\n\r\n" % len(der)
        + der
    )


def ocsp_status(raw: bytes) -> ocsp.OCSPResponseStatus:
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), head
    return ocsp.load_der_ocsp_response(body).response_status


def test_bad_input_gets_malformed_or_4xx_and_the_responder_keeps_answering(
    ready: Ready, tmp_path: Path
) -> None:
    rpc, _, ca = ready
    cert = issue(rpc)
    issuer = x509.load_pem_x509_certificate((ca.directory / "ca" / "issuing.pem").read_bytes())
    good = request_der(cert, issuer, hashes.SHA1())
    malformed = ocsp.OCSPResponseStatus.MALFORMED_REQUEST

    for cut in (1, 2, 10, len(good) // 2, len(good) - 1):  # truncated
        assert ocsp_status(raw_exchange(ca, post(good[:cut]))) is malformed
    rng = random.Random(9919)
    for _ in range(20):  # random
        junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
        assert ocsp_status(raw_exchange(ca, post(junk))) is malformed
    seen = set()
    for _ in range(60):  # bit-flipped: whatever parses is still answered, never good
        flipped = bytearray(good)
        flipped[rng.randrange(len(flipped))] ^= 1 << rng.randrange(8)
        status = ocsp_status(raw_exchange(ca, post(bytes(flipped))))
        seen.add(status)
        if status is ocsp.OCSPResponseStatus.SUCCESSFUL:  # a flip in a tag's class bit...
            resp = ocsp.load_der_ocsp_response(
                raw_exchange(ca, post(bytes(flipped))).partition(b"\r\n\r\n")[2]
            )
            assert resp.serial_number == cert.serial_number  # ...still names our cert
    assert malformed in seen
    # Several requests in one OCSPRequest: RFC 9919 profiles exactly one.
    _, start, _ = read_tlv(good, 0)  # OCSPRequest
    _, start, _ = read_tlv(good, start)  # TBSRequest
    _, start, end = read_tlv(good, start)  # requestList
    two = sequence(sequence(sequence(good[start:end] * 2)))
    assert ocsp_status(raw_exchange(ca, post(two))) is malformed
    # GET whose path is not base64.
    assert (
        ocsp_status(raw_exchange(ca, b"GET /ocsp/%%%***!! HTTP/1.1\r\nConnection: close\r\n\r\n"))
        is malformed
    )

    # HTTP-level refusals: precise 4xx, connection closed.
    cases = [
        (
            post(b"x" * 10, extra=b"").replace(b"Content-Length: 10", b"Content-Length: 999999"),
            b"413",
        ),
        (b"GET /" + b"A" * 20000 + b" HTTP/1.1\r\n\r\n", b"431"),
        (b"BREW /ocsp HTTP/1.1\r\nConnection: close\r\n\r\n", b"405"),
        (b"nonsense\r\n\r\n", b"400"),
        (b"GET / HTTP/2.0\r\n\r\n", b"505"),
        (b"POST /ocsp HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", b"411"),
        (b"POST /ocsp HTTP/1.1\r\nContent-Length: -1\r\n\r\n", b"400"),
    ]
    for data, status in cases:
        reply = raw_exchange(ca, data)
        assert reply.split(b" ", 2)[1] == status, (data[:40], reply[:80])
        assert b"application/json" in reply

    # Keep-alive with pipelining: three requests in one write, three answers in order.
    b64 = base64.b64encode(good).decode().encode()
    get = b"GET /ocsp/" + b64 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    reply = raw_exchange(
        ca,
        get
        + post(good, keep_alive=True)
        + get.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"),
    )
    assert reply.count(b"HTTP/1.1 200 OK") == 3

    # After all that the responder still answers correctly.
    r = httpx.post(f"{ocsp_base(ca)}/ocsp", content=good)
    resp = ocsp.load_der_ocsp_response(r.content)
    assert resp.certificate_status is ocsp.OCSPCertStatus.GOOD


def test_slow_clients_are_cut_off(fresh_ca: DevCA) -> None:
    """A request head that never completes gets 408 and the connection is closed; an
    idle keep-alive connection is closed."""
    text = fresh_ca.config_path.read_text().replace("127.0.0.1:8443", f"127.0.0.1:{free_port()}")
    text = text.replace("127.0.0.1:8080", f"127.0.0.1:{free_port()}")
    text = text.replace("127.0.0.1:9464", f"127.0.0.1:{free_port()}")
    text += 'request_timeout = "1s"\nidle_timeout = "2s"\n'
    fresh_ca.config_path.write_text(text)
    with serve_log(fresh_ca).open("w") as log:  # a pipe nobody reads could fill and block
        proc = subprocess.Popen(
            [str(BIN / "hanko"), "serve", "-c", str(fresh_ca.config_path)],
            stdout=subprocess.PIPE, stderr=log, text=True,
        )  # fmt: skip
    try:
        assert proc.stdout is not None
        assert "OCSP and CRLs on" in proc.stdout.readline()
        started = time.monotonic()
        reply = raw_exchange(fresh_ca, b"GET /ocsp/MEIw HTTP/1.1\r\nHost: sl", timeout=15)
        assert reply.startswith(b"HTTP/1.1 408 ")
        assert time.monotonic() - started < 14  # closed by the server, not our timeout
        started = time.monotonic()
        assert raw_exchange(fresh_ca, b"", timeout=15) == b""
        assert time.monotonic() - started < 14
    finally:
        proc.terminate()
        proc.wait(timeout=30)
