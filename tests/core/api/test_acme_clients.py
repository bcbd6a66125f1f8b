"""Real ACME clients from Debian against `hanko serve` on loopback: certbot gets a
certificate for a pre-validated name with no challenge, for a new name by http-01
(`--standalone`), for a wildcard by dns-01 (a manual hook writes the TXT record into
pebble-challtestsrv, which also answers the names' A records); it revokes and renews;
lego gets one too. Every certificate chains to the hanko root, carries the OV policy
and passes pkilint."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from tests.conftest import (
    BIN,
    DevCA,
    anonymous,
    client,
    free_port,
    free_ports,
    lint,
    openssl_verify,
)

OV_POLICY = "2.23.140.1.2.2"
pytestmark = pytest.mark.slow


class Deployment:
    def __init__(self, base: str, ca: DevCA, http_port: int, management: int) -> None:
        self.base = base
        self.ca = ca
        self.http_port = http_port
        self.management = management
        self.directory = f"{base}/acme/directory"
        bundle = str(ca.directory / "tls" / "internal-ca.pem")
        self.env = {**os.environ, "REQUESTS_CA_BUNDLE": bundle, "LEGO_CA_CERTIFICATES": bundle}

    def eab(self) -> tuple[str, str]:
        r = client(self.base, self.ca, "admin").post(
            "/v1/acme/eab", json={"account": "acme", "organization": "acme", "profile": "ov"}
        )
        assert r.status_code == 201, r.text
        return r.json()["kid"], r.json()["hmac_key"]


def _start(cmd: list[str], **kw: object) -> subprocess.Popen[str]:
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)  # type: ignore[call-overload]


@pytest.fixture
def deployment(fresh_ca: DevCA) -> Iterator[Deployment]:
    if shutil.which("certbot") is None or shutil.which("pebble-challtestsrv") is None:
        pytest.fail("certbot and pebble are not installed: run scripts/dev.sh setup")
    api, status, dns, management, http = free_ports(5)
    chall = start_challtestsrv(dns, management)
    configure_for_clients(fresh_ca, api=api, status=status, http=http, dns=dns)
    proc = _start([str(BIN / "hanko"), "serve", "-c", str(fresh_ca.config_path)])
    try:
        assert proc.stdout is not None
        assert "serving the API" in proc.stdout.readline()
        base = f"https://127.0.0.1:{api}"
        admin = acme_organization(base, fresh_ca)
        # www.example.co.jp validated by a file on the site: that name alone is covered.
        r = admin.post("/v1/admin/organizations/acme/domains",
                       json={"domain": "www.example.co.jp", "method": "http-file"})  # fmt: skip
        assert r.status_code == 201, r.text
        yield Deployment(base, fresh_ca, http, management)
    finally:
        for p in (proc, chall):
            p.terminate()
            p.wait(timeout=30)


def certbot(d: Deployment, work: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["certbot", "--non-interactive", "--config-dir", str(work / "c"), "--work-dir",
         str(work / "w"), "--logs-dir", str(work / "l"), *args],
        capture_output=True, text=True, env=d.env, timeout=180, check=False,
    )  # fmt: skip


def issue_with_certbot(d: Deployment, work: Path, name: str, *how: str) -> Path:
    kid, hmac_key = d.eab()
    r = certbot(d, work, "certonly", "--agree-tos", "--register-unsafely-without-email",
                "--server", d.directory, "--eab-kid", kid, "--eab-hmac-key", hmac_key,
                "--key-type", "ecdsa", "-d", name, "--cert-name", "c", *how)  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    return work / "c" / "live" / "c" / "cert.pem"


def configure_for_clients(ca: DevCA, *, api: int, status: int, http: int, dns: int) -> None:
    """The CA's listeners on free ports, http-01 on `http` (loopback allowed), and
    pebble-challtestsrv on `dns` as its resolver: it answers every name (A records, the
    dns-01 TXT, and CAA: none)."""
    text = ca.config_path.read_text()
    text = text.replace("127.0.0.1:8443", f"127.0.0.1:{api}")
    text = text.replace("127.0.0.1:8080", f"127.0.0.1:{status}")
    text = text.replace("127.0.0.1:9464", f"127.0.0.1:{free_port()}")
    text = text.replace(
        'eab_secret = { file = "secrets/acme-eab.secret" }',
        'eab_secret = { file = "secrets/acme-eab.secret" }\n'
        f"http01_port = {http}\nallow_private_targets = true",
    )
    text = re.sub(r'(?m)^resolver = ".*"$', f'resolver = "127.0.0.1:{dns}"', text)
    ca.config_path.write_text(text)


def acme_organization(base: str, ca: DevCA) -> httpx.Client:
    """Account `acme` with a pooled licence and OV organization `acme`; the admin client."""
    admin = client(base, ca, "admin")
    r = admin.post("/v1/admin/accounts", json={"id": "acme", "name": "Acme"})
    assert r.status_code == 201, r.text
    pool = {"id": "pool", "kind": "pooled", "quantity": 1000, "years": 1}
    r = admin.post("/v1/admin/accounts/acme/licenses", json=pool)
    assert r.status_code == 201, r.text
    org = {"id": "acme", "account": "acme", "level": "ov", "organization": "Acme Japan K.K.",
           "country": "JP", "state": "Tokyo-to", "locality": "Chiyoda-ku"}  # fmt: skip
    r = admin.post("/v1/admin/organizations", json=org)
    assert r.status_code == 201, r.text
    return admin


def start_challtestsrv(dns: int, management: int) -> subprocess.Popen[str]:
    """pebble-challtestsrv answering every name (127.0.0.1), its TXT set through
    `management`; no HTTP or TLS challenge servers of its own."""
    return _start(["pebble-challtestsrv", "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "",
                   "-dns01", f"127.0.0.1:{dns}", "-management", f"127.0.0.1:{management}",
                   "-http01", "", "-https01", "", "-tlsalpn01", ""])  # fmt: skip


def dns01_hook(d: Deployment, work: Path) -> tuple[str, ...]:
    """certbot's arguments for dns-01 through a hook that puts the TXT record into
    pebble-challtestsrv."""
    hook = work / "dns-hook.sh"
    record = '{\\"host\\":\\"_acme-challenge.${CERTBOT_DOMAIN}.\\",'
    record += '\\"value\\":\\"${CERTBOT_VALIDATION}\\"}'
    hook.write_text(
        f'#!/bin/sh\ncurl -s -X POST -d "{record}" http://127.0.0.1:{d.management}/set-txt\n'
    )
    hook.chmod(0o755)
    return ("--manual", "--preferred-challenges", "dns", "--manual-auth-hook", str(hook))


def run_lego(d: Deployment, path: Path, name: str) -> subprocess.CompletedProcess[str]:
    """lego, http-01 on the deployment's port, with an EAB credential of its own."""
    kid, hmac_key = d.eab()
    return subprocess.run(
        ["lego", "--server", d.directory, "--eab", "--kid", kid, "--hmac", hmac_key,
         "--email", "ops@example.co.jp", "--accept-tos", "--key-type", "ec256",
         "--domains", name, "--http", "--http.port", f"127.0.0.1:{d.http_port}",
         "--path", str(path), "run"],
        capture_output=True, text=True, env=d.env, timeout=180, check=False,
    )  # fmt: skip


def check_certificate(d: Deployment, path: Path, name: str) -> x509.Certificate:
    openssl_verify(d.ca.directory / "ca", path)
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    policies = cert.extensions.get_extension_for_class(x509.CertificatePolicies).value
    assert OV_POLICY in {p.policy_identifier.dotted_string for p in policies}
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [name]
    assert lint(path, "OV-FINAL-CERTIFICATE") == []
    return cert


def test_certbot_and_lego(deployment: Deployment, tmp_path: Path) -> None:
    d = deployment
    # A pre-validated name: the authorization is valid at once, the hook never runs.
    pre = issue_with_certbot(d, tmp_path / "pre", "www.example.co.jp",
                             "--manual", "--manual-auth-hook", "/bin/false")  # fmt: skip
    check_certificate(d, pre, "www.example.co.jp")

    # A new name by http-01: certbot's standalone server answers the fetch.
    fresh = issue_with_certbot(d, tmp_path / "http", "shop.example.co.jp", "--standalone",
                               "--http-01-port", str(d.http_port),
                               "--http-01-address", "127.0.0.1")  # fmt: skip
    check_certificate(d, fresh, "shop.example.co.jp")

    # A wildcard by dns-01: the hook puts the TXT record into pebble-challtestsrv.
    wild = issue_with_certbot(d, tmp_path / "dns", "*.example.co.jp", *dns01_hook(d, tmp_path))
    check_certificate(d, wild, "*.example.co.jp")

    # certbot renews (the new name's http-01 validation is reused) and revokes.
    r = certbot(d, tmp_path / "http", "renew", "--force-renewal", "--no-random-sleep-on-renew")
    assert r.returncode == 0, r.stdout + r.stderr
    renewed = x509.load_pem_x509_certificate(fresh.read_bytes())
    assert (
        renewed.serial_number
        != x509.load_pem_x509_certificate(
            (tmp_path / "http" / "c" / "archive" / "c" / "cert1.pem").read_bytes()
        ).serial_number
    )
    r = certbot(d, tmp_path / "http", "revoke", "--server", d.directory, "--cert-path",
                str(fresh), "--reason", "keycompromise", "--no-delete-after-revoke")  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    with client(d.base, d.ca, "admin") as admin:
        view = admin.get(f"/v1/certificates/{renewed.serial_number:x}").json()
    assert (view["status"], view["reason"]) == ("revoked", "keyCompromise")

    # lego, with a credential of its own.
    out = run_lego(d, tmp_path / "lego", "www.example.co.jp")
    assert out.returncode == 0, out.stdout + out.stderr
    lego_cert = tmp_path / "lego" / "certificates" / "www.example.co.jp.crt"
    leaf = tmp_path / "lego-leaf.pem"
    leaf.write_text(
        lego_cert.read_text().split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n"
    )
    check_certificate(d, leaf, "www.example.co.jp")
    assert anonymous(d.base, d.ca).get("/readyz").status_code == 200
