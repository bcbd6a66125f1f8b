"""CRLs published by `hanko serve`'s updater and served over plain HTTP to CDNs by the
status listener (the OCSP port: one status host name serves /ocsp and /crl/)."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from tests.conftest import DevCA, anonymous, csr
from tests.ocsp.test_answers import ocsp_base

FAST = '\n[crl]\nchange_delay = "1s"\n'


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def wait_for(client: httpx.Client, path: str, seconds: float = 30) -> httpx.Response:
    deadline = time.monotonic() + seconds
    while True:
        r = client.get(path)
        if r.status_code == 200 or time.monotonic() > deadline:
            return r
        time.sleep(0.2)


def crl_number(der: bytes) -> int:
    crl = x509.load_der_x509_crl(der)
    return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number


@pytest.mark.parametrize("service", [FAST], indirect=True)
def test_published_by_the_updater_and_served_with_validators(
    ready: tuple[httpx.Client, httpx.Client, DevCA],
) -> None:
    rpc, admin, ca = ready
    public = httpx.Client(base_url=ocsp_base(ca), timeout=30)
    issuer = x509.load_pem_x509_certificate((ca.directory / "ca" / "issuing.pem").read_bytes())
    r = wait_for(public, "/crl/0.crl")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/pkix-crl"
    assert "public" in r.headers["cache-control"]
    assert "max-age=1" in r.headers["cache-control"]
    crl = x509.load_der_x509_crl(r.content)
    assert crl.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]
    assert int(r.headers["content-length"]) == len(r.content)
    tag, modified = r.headers["etag"], r.headers["last-modified"]
    # Last-Modified is the CRL's thisUpdate.
    assert modified == crl.last_update_utc.strftime("%a, %d %b %Y %H:%M:%S GMT")

    for headers in (
        {"if-none-match": tag},
        {"if-none-match": f'"other", {tag}'},
        {"if-none-match": "*"},
        {"if-modified-since": modified},
        {"if-modified-since": "Fri, 01 Jan 2100 00:00:00 GMT"},
    ):
        again = public.get("/crl/0.crl", headers=headers)
        assert again.status_code == 304, headers
        assert again.content == b""
        assert again.headers["etag"] == tag
    for headers in (
        {"if-none-match": '"other"', "if-modified-since": modified},  # the tag decides
        {"if-modified-since": "Thu, 01 Jan 1970 00:00:00 GMT"},
        {"if-modified-since": "yesterday"},  # unparsable: ignored
    ):
        assert public.get("/crl/0.crl", headers=headers).status_code == 200, headers
    head = public.head("/crl/0.crl")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == str(len(r.content))

    for path, status in (
        ("/crl/99999.crl", 404),
        ("/crl/01.crl", 404),
        ("/crl/..%2fhanko.toml.crl", 404),
        ("/crl/0.crl.tmp", 404),
    ):
        bad = public.get(path)
        assert bad.status_code == status, path
        assert bad.headers["content-type"] == "application/json"
    assert public.post("/crl/0.crl").status_code == 405
    # The API listener serves no CRL; it lists their URLs.
    api = anonymous(str(rpc.base_url), ca)
    assert api.get("/crl/0.crl").status_code == 404
    urls = api.get("/crl/urls.json").json()
    expected = [
        f"http://pki.hanko.example.com/crl/{p}.crl" for p in range(ca.config.crl.partitions)
    ]
    assert urls["crl_urls"] == expected
    [only] = urls["issuers"]
    assert (only["name"], only["crl_urls"]) == ("e1", expected)
    assert only["issuer_key_id"] == (
        issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest.hex()
    )

    # A revocation reaches its partition's CRL within the change delay and a poll.
    issued = rpc.post(
        "/v1/certificates",
        json={"csr": csr("crl.example.co.jp"), "profile": "ov", "organization": "acme"},
    ).json()
    cert = x509.load_pem_x509_certificate(issued["certificate"].encode())
    url = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value[0]
    path = "/crl/" + url.full_name[0].value.rsplit("/", 1)[1]
    before = public.get(path)
    assert rpc.post(f"/v1/certificates/{issued['serial']}/revoke", json={"reason": "keyCompromise"})
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        now = public.get(path, headers={"if-none-match": before.headers["etag"]})
        if now.status_code == 200:
            break
        time.sleep(0.2)
    assert now.status_code == 200
    listed = x509.load_der_x509_crl(now.content)
    assert listed.get_revoked_certificate_by_serial_number(int(issued["serial"], 16)) is not None
    assert crl_number(now.content) > crl_number(before.content)
    stats = admin.get("/v1/statistics").json()["crl_updater"]
    assert stats["published_full"] >= ca.config.crl.partitions + 1
    assert stats["failures"] == 0


@pytest.mark.parametrize("service", ["processes = 1\n"], indirect=True)
def test_memory_does_not_grow_with_concurrent_downloads(
    service: tuple[str, DevCA, subprocess.Popen[str]],
) -> None:
    _, ca, proc = service
    base = ocsp_base(ca)
    host, port = base.removeprefix("http://").split(":")
    publish = ca.config.path(ca.config.crl.publish_dir)
    publish.mkdir(parents=True, exist_ok=True)
    big = publish / "4242.crl"  # stands in for a CRL of a few hundred thousand entries
    payload = bytes(range(256)) * (128 << 10)  # 32 MiB
    big.write_bytes(payload)
    # The responder keeps one copy of each published file: read it in first.
    assert httpx.get(f"{base}/crl/4242.crl", timeout=60).content == payload
    [responder] = [
        int(pid)
        for pid in subprocess.run(
            ["pgrep", "-P", str(proc.pid)], capture_output=True, text=True, check=False
        ).stdout.split()
        if "ocsp.status.server" in Path(f"/proc/{pid}/cmdline").read_text(errors="replace")
    ]
    time.sleep(1)
    before = rss_kib(responder)
    stalled = []
    for _ in range(40):
        s = socket.create_connection((host, int(port)))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(f"GET /crl/4242.crl HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        stalled.append(s)  # never read: the server must wait, not buffer 40 x 32 MiB
    time.sleep(2)
    during = rss_kib(responder)
    whole = httpx.get(f"{base}/crl/4242.crl", timeout=60)
    for s in stalled:
        s.close()
    assert whole.content == payload
    assert proc.poll() is None
    # Buffering a copy per download would add 40 x 32 MiB; flow control, a chunk each.
    assert during - before < 16 << 10, (before, during)
