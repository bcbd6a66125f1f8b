"""`hanko ca renew-responder` (core/responder_cert.py): a renewed delegated responder
certificate, served by a running `hanko serve` without a restart, and refused cleanly
when the configuration names the wrong key."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509 import ocsp

from tests.conftest import (
    DevCA,
    Service,
    client,
    hanko,
    lint,
    lint_ocsp,
    openssl_verify,
    paying_org,
    serve_log,
)
from tests.ocsp.test_answers import files, issue, ocsp_base, openssl_ocsp, request_der


def _served(ca: DevCA, cert: x509.Certificate, issuer: x509.Certificate) -> bytes:
    r = httpx.post(
        f"{ocsp_base(ca)}/ocsp",
        content=request_der(cert, issuer, hashes.SHA1()),  # noqa: S303 - the CertID hash
        headers={"Content-Type": "application/ocsp-request"},
        timeout=10,
    )
    assert r.status_code == 200
    return r.content


def _until(check: object, what: str, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"not within {seconds} s: {what}"
        time.sleep(0.1)


# One responder process (the [ocsp] table comes last in `hanko init`'s config): the one
# that served, and cached, the old certificate is the one asked again.
@pytest.mark.parametrize("service", ["processes = 1\n"], indirect=True)
def test_a_renewed_responder_certificate_is_served_without_a_restart(
    service: Service, tmp_path: Path
) -> None:
    base, ca, proc = service
    admin = client(base, ca, "admin")
    paying_org(admin, "acme")
    rpc = client(base, ca, "rpc")
    cert = issue(rpc)
    leaf, issuer_pem, chain = files(ca, cert, tmp_path)
    issuer = x509.load_pem_x509_certificate(issuer_pem.read_bytes())
    path = ca.directory / "ca" / "ocsp-responder.pem"
    old = x509.load_pem_x509_certificate(path.read_bytes())
    assert ocsp.load_der_ocsp_response(_served(ca, cert, issuer)).certificates == [old]

    result = hanko("ca", "renew-responder", "-c", str(ca.config_path))
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 1
    new = x509.load_pem_x509_certificate(path.read_bytes())
    assert new.serial_number != old.serial_number
    assert f"{new.serial_number:x}" in result.stdout
    assert new.public_key() == old.public_key()  # the same HSM key: nothing re-signed
    assert new.not_valid_after_utc > old.not_valid_after_utc
    kept = ca.directory / "ca" / f"ocsp-responder-{old.serial_number:x}.pem"
    assert x509.load_pem_x509_certificate(kept.read_bytes()) == old
    assert lint(path, "OCSP-RESPONDER") == []
    openssl_verify(ca.directory / "ca", path)

    # The responders wrap every stored response in the renewed certificate within a tick.
    _until(
        lambda: ocsp.load_der_ocsp_response(_served(ca, cert, issuer)).certificates == [new],
        "the renewed certificate served",
    )
    report = openssl_ocsp(ca, leaf, issuer_pem, chain)
    assert f"{leaf}: good" in report
    assert "Response verify OK" in report
    served = tmp_path / "renewed.der"
    served.write_bytes(_served(ca, cert, issuer))
    assert lint_ocsp(served) == []

    # The core signs under it too: its refresher reports the new end, and what it signs
    # next (a revocation) is served with the new certificate.
    def core_end() -> int:
        stats = admin.get("/v1/statistics").json()["ocsp_refresher"]
        return int(stats["responder_not_after"])

    _until(lambda: core_end() == int(new.not_valid_after_utc.timestamp()), "the core adopts it")
    r = rpc.post(
        f"/v1/certificates/{cert.serial_number:x}/revoke", json={"reason": "keyCompromise"}
    )
    assert r.status_code == 200, r.text

    def revoked() -> bool:
        resp = ocsp.load_der_ocsp_response(_served(ca, cert, issuer))
        return resp.certificate_status is ocsp.OCSPCertStatus.REVOKED

    _until(revoked, "the revocation served")
    resp = ocsp.load_der_ocsp_response(_served(ca, cert, issuer))
    assert resp.certificates == [new]
    assert "Response verify OK" in openssl_ocsp(ca, leaf, issuer_pem, chain)

    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=30)
    err = serve_log(ca).read_text()
    assert "signing under the renewed responder certificate" in err


def test_a_renewal_for_the_wrong_key_is_refused_and_changes_nothing(fresh_ca: DevCA) -> None:
    ca_dir = fresh_ca.directory / "ca"
    before = {p.name: p.read_bytes() for p in ca_dir.iterdir()}
    text = fresh_ca.config_path.read_text()
    fresh_ca.config_path.write_text(
        text.replace(
            'ocsp_responder_key_label = "hanko-ocsp-1"', 'ocsp_responder_key_label = "hanko-root-1"'
        )
    )
    result = hanko("ca", "renew-responder", "-c", str(fresh_ca.config_path))
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "hanko: error: ca.issuers (e1).ocsp_responder_key_label: the HSM key 'hanko-root-1' is "
        "not the key of ca.issuers (e1).ocsp_responder_cert"
    ]
    assert {p.name: p.read_bytes() for p in ca_dir.iterdir()} == before
