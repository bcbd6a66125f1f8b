"""The API listener speaks TLS only, with the certificate `hanko init` made from its
internal CA; with `[api] client_ca` set it asks for client certificates (mTLS), and a
key may be bound to one. Checked with openssl, curl and GnuTLS as clients."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from tests.conftest import BIN, DevCA, Service, client, hanko, new_key, paying_org

MTLS = {"replace": [('# client_ca = "tls/internal-ca.pem"', 'client_ca = "tls/internal-ca.pem"')]}


def hostport(base: str) -> str:
    return base.removeprefix("https://")


def curl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["curl", "-sS", "--max-time", "10", *args],
        capture_output=True,
        text=True,
        check=False,
    )


def test_clients_verify_the_api_certificate_against_the_internal_ca(service: Service) -> None:
    base, ca, _ = service
    internal = ca.directory / "tls" / "internal-ca.pem"
    out = subprocess.run(
        ["openssl", "s_client", "-connect", hostport(base), "-CAfile", str(internal),
         "-verify_return_error", "-verify_hostname", "localhost", "-brief"],
        input="", capture_output=True, text=True, timeout=20, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "Verification: OK" in out.stderr
    r = curl("--cacert", str(internal), f"{base}/healthz")
    assert (r.returncode, r.stdout) == (0, '{"status":"ok"}'), r.stderr
    # localhost is a name of the certificate as well as 127.0.0.1
    port = base.rsplit(":", 1)[1]
    r = curl("--cacert", str(internal), f"https://localhost:{port}/healthz")
    assert r.returncode == 0, r.stderr
    gnutls = subprocess.run(
        ["gnutls-cli", "--x509cafile", str(internal), "-p", port, "127.0.0.1"],
        input="", capture_output=True, text=True, timeout=20, check=False,
    )  # fmt: skip
    assert "The certificate is trusted" in gnutls.stdout + gnutls.stderr, gnutls.stdout
    # Not the public hierarchy: the CA's own roots do not vouch for the listener.
    r = curl("--cacert", str(ca.directory / "ca" / "root.pem"), f"{base}/healthz")
    assert r.returncode != 0
    # Plain HTTP to the API port gets no answer.
    r = curl(f"http://{hostport(base)}/healthz")
    assert r.returncode != 0
    assert r.stdout == ""


@pytest.mark.parametrize("service", [MTLS], indirect=True)
def test_mtls_refuses_clients_without_a_certificate_of_the_client_ca(
    service: Service, tmp_path: Path
) -> None:
    base, ca, _ = service
    internal = str(ca.directory / "tls" / "internal-ca.pem")
    r = curl("--cacert", internal, f"{base}/healthz")
    assert r.returncode != 0  # the handshake fails: no client certificate
    assert r.stdout == ""
    made = hanko("tls", "client-cert", "-c", str(ca.config_path), "--name", "portal-1",
                 "--out", str(tmp_path / "portal-1"))  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "portal-1.key").stat().st_mode & 0o777 == 0o600
    cert = ["--cert", str(tmp_path / "portal-1.pem"), "--key", str(tmp_path / "portal-1.key")]
    r = curl("--cacert", internal, *cert, f"{base}/healthz")
    assert (r.returncode, r.stdout) == (0, '{"status":"ok"}'), r.stderr
    # A self-made certificate from another CA is refused like none.
    other = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-subj", "/CN=intruder", "-days", "1", "-keyout", str(tmp_path / "x.key"),
         "-out", str(tmp_path / "x.pem")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert other.returncode == 0, other.stderr
    r = curl("--cacert", internal, "--cert", str(tmp_path / "x.pem"),
             "--key", str(tmp_path / "x.key"), f"{base}/healthz")  # fmt: skip
    assert r.returncode != 0

    # A key bound to portal-1's certificate works over it and not over another one.
    hanko("tls", "client-cert", "-c", str(ca.config_path), "--name", "portal-2",
          "--out", str(tmp_path / "portal-2"), check=True)  # fmt: skip
    pem = x509.load_pem_x509_certificate((tmp_path / "portal-1.pem").read_bytes())
    digest = hashlib.sha256(pem.public_bytes(Encoding.DER)).hexdigest()
    admin_token = (ca.directory / "secrets" / "admin.token").read_text().strip()
    admin = ["-H", f"Authorization: Bearer {admin_token}"]
    account = ["-X", "POST", "-d", '{"id": "acme", "name": "Acme"}']
    r = curl("--cacert", internal, *cert, *admin, *account, f"{base}/v1/admin/accounts")
    assert '"id":"acme"' in r.stdout, r.stdout + r.stderr
    created = hanko(
        "keys", "create", "-c", str(ca.config_path), "--role", "reader", "--account", "acme",
        "--client-cert", str(tmp_path / "portal-1.pem"), "--json",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    key = json.loads(created.stdout)
    assert key["key"]["client_cert_sha256"] == digest
    bearer = ["-H", f"Authorization: Bearer {key['secret']}"]
    r = curl("--cacert", internal, *cert, *bearer, f"{base}/v1/accounts/acme")
    assert '"id":"acme"' in r.stdout, r.stdout
    wrong = ["--cert", str(tmp_path / "portal-2.pem"), "--key", str(tmp_path / "portal-2.key")]
    r = curl("--cacert", internal, *wrong, *bearer, f"{base}/v1/accounts/acme")
    assert '"error":"client_certificate_required"' in r.stdout, r.stdout


def test_serve_refuses_a_routable_address_without_tls(fresh_ca: DevCA) -> None:
    text = fresh_ca.config_path.read_text()
    text = text.replace('tls_cert = "tls/api.pem"\n', "").replace('tls_key = "tls/api.key"\n', "")
    fresh_ca.config_path.write_text(
        text.replace('listen = "127.0.0.1:8443"', 'listen = "0.0.0.0:8443"')
    )
    result = subprocess.run(
        [str(BIN / "hanko"), "serve", "-c", str(fresh_ca.config_path)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    # The lab switch of [mpic] that `hanko init` writes is refused off loopback too.
    line, lab = result.stderr.strip().splitlines()
    assert line.startswith("hanko: error: api.listen: 0.0.0.0:8443 is not a loopback address")
    assert "api.tls_cert" in line
    assert lab.startswith("hanko: error: mpic.enabled: false only while every listener")
    # On loopback, plain HTTP stays possible (a TLS-terminating proxy next to it).
    fresh_ca.config_path.write_text(text)
    checked = hanko("check-config", "-c", str(fresh_ca.config_path))
    assert checked.returncode == 0, checked.stderr


def test_the_internal_certificates_are_clean_rfc_5280(dev_ca: DevCA, tmp_path: Path) -> None:
    """pkilint's RFC 5280 linter finds nothing but the name "localhost": its DNS name
    check wants two labels, and clients ask for https://localhost by that name. (These
    certificates are the API's own, not the public hierarchy's; the public hierarchy's
    are linted with the CA/B profiles.)"""
    tls = dev_ca.directory / "tls"
    server, internal = x509.load_pem_x509_certificates((tls / "api.pem").read_bytes())
    ca_cert = x509.load_pem_x509_certificate((tls / "internal-ca.pem").read_bytes())
    assert internal == ca_cert
    expected = {"server": {'Invalid domain name syntax: "localhost"'}, "ca": set()}
    for name, cert in (("server", server), ("ca", internal)):
        path = tmp_path / f"{name}.pem"
        path.write_bytes(cert.public_bytes(Encoding.PEM))
        out = subprocess.run(
            [str(BIN / "lint_pkix_cert"), "lint", "-s", "WARNING", "-f", "JSON", str(path)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        findings = {
            finding.get("message")
            for result in json.loads(out.stdout)["results"]
            for finding in result["finding_descriptions"]
        }
        assert findings == expected[name], findings
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1", "::1"]
    assert server.verify_directly_issued_by(ca_cert) is None


def test_an_admin_made_key_works_with_a_client(service: Service) -> None:
    base, ca, _ = service
    paying_org(client(base, ca, "admin"), "acme")
    key = new_key(base, ca, "reader", "acme")
    assert key["secret"].startswith("hks_")


def test_the_listener_certificate_is_renewed_in_place(fresh_ca: DevCA) -> None:
    tls = fresh_ca.directory / "tls"
    before = x509.load_pem_x509_certificates((tls / "api.pem").read_bytes())[0]
    key_before = (tls / "api.key").read_bytes()
    out = hanko("tls", "renew-server", "-c", str(fresh_ca.config_path))
    assert out.returncode == 0, out.stderr
    assert "SIGHUP" in out.stdout
    after, ca_cert = x509.load_pem_x509_certificates((tls / "api.pem").read_bytes())
    assert after.serial_number != before.serial_number
    assert (tls / "api.key").read_bytes() != key_before
    assert (tls / "api.key").stat().st_mode & 0o777 == 0o600
    after.verify_directly_issued_by(ca_cert)
    # Mozilla's "intermediate" profile: a server certificate of at most 366 days, from
    # `hanko init` and from the renewal alike.
    for cert in (before, after):
        assert (cert.not_valid_after_utc - cert.not_valid_before_utc).days <= 366
    checked = hanko("check-config", "-c", str(fresh_ca.config_path))
    assert checked.returncode == 0, checked.stderr
