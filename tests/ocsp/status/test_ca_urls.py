"""The URLs a certificate carries answer on the status listener: AIA caIssuers (the
issuing CA, and the root named in the issuing CA's AIA), the CRL distribution points
(a partition CRL, and the root CRL of `hanko ca root-crl`), and OCSP, each at its
configured path; anything else is 404. openssl builds and checks the whole chain from
what the listener serves."""

from __future__ import annotations

import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import AuthorityInformationAccessOID as AIA

from tests.conftest import DevCA, Service, client, hanko, lint_crl, paying_org
from tests.ocsp.test_answers import issue, ocsp_base

BASE = 'base_url = "http://pki.hanko.example.com"\n'
CUSTOM = {
    "replace": [
        (
            BASE,
            BASE + 'ocsp_url = "http://status.hanko.example.com/status"\n'
            'crl_url = "http://status.hanko.example.com/crls/tls"\n',
        ),
        # The URLs of an issuer are its own: certificates carry them.
        (
            'crl_url = "http://pki.hanko.example.com/crl"\n',
            'crl_url = "http://status.hanko.example.com/crls/tls"\n',
        ),
        (
            'issuer_url = "http://pki.hanko.example.com/ca/issuing.cer"\n',
            'issuer_url = "http://status.hanko.example.com/certs/tls-issuing-1.der"\n',
        ),
    ]
}


def aia(cert: x509.Certificate, method: x509.ObjectIdentifier) -> str:
    ext = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    return next(str(d.access_location.value) for d in ext if d.access_method == method)


def cdp(cert: x509.Certificate) -> str:
    ext = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    names = ext[0].full_name
    assert names is not None
    return str(names[0].value)


def fetch(public: httpx.Client, url: str, content_type: str) -> bytes:
    r = public.get(urlsplit(url).path)
    assert r.status_code == 200, (url, r.status_code, r.text)
    assert r.headers["content-type"] == content_type
    assert "etag" in r.headers
    assert "public" in r.headers["cache-control"]
    again = public.get(urlsplit(url).path, headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304
    return r.content


def pem_crl(der: bytes, path: Path) -> Path:
    path.write_bytes(x509.load_der_x509_crl(der).public_bytes(serialization.Encoding.PEM))
    return path


def follow_every_url(service: Service, tmp_path: Path, *, ocsp_path: str) -> None:
    base, ca, _ = service
    admin = client(base, ca, "admin")
    paying_org(admin, "acme")
    leaf = issue(client(base, ca, "rpc", "acme"))
    public = httpx.Client(base_url=ocsp_base(ca), timeout=30)

    issuing = x509.load_der_x509_certificate(
        fetch(public, aia(leaf, AIA.CA_ISSUERS), "application/pkix-cert")
    )
    assert issuing.subject == leaf.issuer
    root = x509.load_der_x509_certificate(
        fetch(public, aia(issuing, AIA.CA_ISSUERS), "application/pkix-cert")
    )
    assert root.subject == issuing.issuer == root.issuer
    partition_crl = fetch(public, cdp(leaf), "application/pkix-crl")
    root_crl = fetch(public, cdp(issuing), "application/pkix-crl")
    (tmp_path / "root.crl").write_bytes(root_crl)
    assert lint_crl(tmp_path / "root.crl", "BR", "WARNING", "ARL") == ""
    assert aia(leaf, AIA.OCSP).endswith(ocsp_path)

    pem = serialization.Encoding.PEM
    (tmp_path / "root.pem").write_bytes(root.public_bytes(pem))
    (tmp_path / "issuing.pem").write_bytes(issuing.public_bytes(pem))
    (tmp_path / "leaf.pem").write_bytes(leaf.public_bytes(pem))
    crls = [pem_crl(root_crl, tmp_path / "root-crl.pem"),
            pem_crl(partition_crl, tmp_path / "leaf-crl.pem")]  # fmt: skip
    verify = subprocess.run(
        ["openssl", "verify", "-crl_check_all", "-CAfile", str(tmp_path / "root.pem"),
         "-untrusted", str(tmp_path / "issuing.pem"),
         *[a for c in crls for a in ("-CRLfile", str(c))], str(tmp_path / "leaf.pem")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert "leaf.pem: OK" in verify.stdout, verify.stdout + verify.stderr
    status = subprocess.run(
        ["openssl", "ocsp", "-issuer", str(tmp_path / "issuing.pem"),
         "-cert", str(tmp_path / "leaf.pem"), "-url", f"{ocsp_base(ca)}{ocsp_path}",
         "-CAfile", str(tmp_path / "root.pem"), "-verify_other", str(tmp_path / "issuing.pem")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert "leaf.pem: good" in status.stdout, status.stdout + status.stderr
    assert "Response verify OK" in status.stderr

    for stray in ("/", "/favicon.ico", "/ca/", "/ca/other.cer", "/crl", "/robots.txt"):
        r = public.get(stray)
        assert r.status_code == 404, (stray, r.status_code)
        assert r.headers["content-type"] == "application/json"
    assert public.post("/elsewhere", content=b"0").status_code == 404


def test_the_default_urls_answer(service: Service, tmp_path: Path) -> None:
    follow_every_url(service, tmp_path, ocsp_path="/ocsp")


@pytest.mark.parametrize("service", [CUSTOM], indirect=True)
def test_configured_urls_are_written_and_served_at_their_paths(
    service: Service, tmp_path: Path
) -> None:
    follow_every_url(service, tmp_path, ocsp_path="/status")
    public = httpx.Client(base_url=ocsp_base(service[1]), timeout=30)
    assert public.get("/crl/0.crl").status_code == 404  # the default paths are not served
    assert public.get("/ca/issuing.cer").status_code == 404


def test_root_crl_numbers_grow_and_the_validity_is_capped(fresh_ca: DevCA) -> None:
    cfg = str(fresh_ca.config_path)
    out = hanko("ca", "root-crl", "-c", cfg, "--json")
    assert out.returncode == 0, out.stderr
    first = x509.load_der_x509_crl((fresh_ca.directory / "crl" / "root.crl").read_bytes())
    number = first.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    assert number == 2  # `hanko init` published the first
    refused = hanko("ca", "root-crl", "-c", cfg, "--days", "366")
    assert refused.returncode == 1
    assert refused.stderr.strip().count("\n") == 0
    assert "365" in refused.stderr
    after = x509.load_der_x509_crl((fresh_ca.directory / "crl" / "root.crl").read_bytes())
    assert after.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 2
