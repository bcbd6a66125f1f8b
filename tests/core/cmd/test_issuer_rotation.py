"""A rotation under load: while a client issues without pause, a new intermediate is
created and activated and the old one retired, each taken by `hanko serve` on SIGHUP.
No request fails; new certificates come from the new issuer; a certificate of the
retired one still gets OCSP "good", is revoked and is on its next CRL; then
`hanko ca revoke-issuer` puts the old intermediate on the root CRL and
`openssl verify -crl_check_all` refuses its chain. Real SoftHSM, openssl, pkilint."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from tests.conftest import (
    DevCA,
    client,
    crl_pem,
    csr,
    hanko,
    lint_crl,
    paying_org,
    serve_log,
    serving,
)

pytestmark = pytest.mark.slow

ROUNDS_MAX = 2000  # the load loop's bound, whatever happens


def ski(cert: x509.Certificate) -> bytes:
    return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest


def aki(cert: x509.Certificate) -> bytes | None:
    return cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, check=False, timeout=60)


class Load:
    """Issues one certificate after another until stopped; keeps every outcome."""

    def __init__(self, rpc: httpx.Client) -> None:
        self.rpc = rpc
        self.outcomes: list[tuple[int, bytes | None]] = []  # (status, AKI of the certificate)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        for n in range(ROUNDS_MAX):
            if self.stop.is_set():
                return
            r = self.rpc.post(
                "/v1/certificates",
                json={"csr": csr(f"load{n}.example.co.jp"), "profile": "ov",
                      "organization": "acme"},
            )  # fmt: skip
            found = None
            if r.status_code == 201:
                found = aki(x509.load_pem_x509_certificate(r.json()["certificate"].encode()))
            self.outcomes.append((r.status_code, found))

    def issued_since(self, mark: int) -> list[bytes | None]:
        return [k for _, k in self.outcomes[mark:]]


def reload(proc: subprocess.Popen[str], ca: DevCA, times: int) -> None:
    """SIGHUP, then wait for the log to say the issuers were switched `times` times."""
    proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 60
    while serve_log(ca).read_text().count("issuers now:") < times:
        assert "reload refused" not in serve_log(ca).read_text(), serve_log(ca).read_text()
        assert time.monotonic() < deadline, "the reload did not finish"
        time.sleep(0.1)


def wait_for(load: Load, mark: int, key: bytes, count: int) -> None:
    deadline = time.monotonic() + 60
    while load.issued_since(mark).count(key) < count:
        assert time.monotonic() < deadline, "the load issued too little"
        time.sleep(0.05)


def test_rotation_under_load(fresh_ca: DevCA, tmp_path: Path) -> None:
    ca = fresh_ca
    cfg = str(ca.config_path)
    root_pem = ca.directory / "ca" / "root.pem"
    old_pem = ca.directory / "ca" / "issuing.pem"
    old = x509.load_pem_x509_certificate(old_pem.read_bytes())
    with serving(ca) as (base, _, proc):
        paying_org(client(base, ca, "admin"), "acme")
        rpc = client(base, ca, "rpc", "acme")
        status = f"http://{ca.config.ocsp.listen}"
        kept: list[Path] = []
        for n in range(2):  # certificates of the old issuer, to follow after it retires
            r = rpc.post(
                "/v1/certificates",
                json={"csr": csr(f"kept{n}.example.co.jp"), "profile": "ov",
                      "organization": "acme"},
            )  # fmt: skip
            assert r.status_code == 201, r.text
            kept.append(tmp_path / f"kept{n}.pem")
            kept[-1].write_text(r.json()["certificate"])

        load = Load(client(base, ca, "rpc", "acme"))
        load.thread.start()
        try:
            wait_for(load, 0, ski(old), 3)
            hanko("ca", "issuer", "create", "-c", cfg, "--name", "e2", check=True)
            new_pem = ca.directory / "ca" / "issuers" / "e2.pem"
            new = x509.load_pem_x509_certificate(new_pem.read_bytes())
            hanko("ca", "issuer", "activate", "-c", cfg, "e2", check=True)
            reload(proc, ca, 1)
            wait_for(load, 0, ski(new), 3)  # both issue now, at random
            hanko("ca", "issuer", "retire", "-c", cfg, "e1", check=True)
            reload(proc, ca, 2)
            mark = len(load.outcomes) + 1  # a request under way may still be e1's
            wait_for(load, mark, ski(new), 10)
        finally:
            load.stop.set()
            load.thread.join(timeout=120)
        assert load.outcomes, "the load issued nothing"
        failed = [s for s, _ in load.outcomes if s != 201]
        assert failed == [], f"{len(failed)} of {len(load.outcomes)} requests failed: {failed[:5]}"
        assert set(load.issued_since(mark)) == {ski(new)}
        assert ski(old) in load.issued_since(0)

        listed = {
            row["name"]: row
            for row in json.loads(
                hanko("ca", "issuer", "list", "-c", cfg, "--json", check=True).stdout
            )
        }
        assert listed["e1"]["state"] == "retired"
        assert listed["e1"]["certificates_valid"] >= 5
        assert listed["e1"]["status_until"]
        assert listed["e2"]["state"] == "active"

        # The retired issuer's certificate: OCSP "good", then revoked, then on its CRL.
        chain = tmp_path / "old-chain.pem"
        chain.write_bytes(root_pem.read_bytes() + old_pem.read_bytes())
        out = run(
            "openssl", "ocsp", "-issuer", str(old_pem), "-cert", str(kept[0]),
            "-url", f"{status}/ocsp", "-CAfile", str(chain), "-no_nonce",
        )  # fmt: skip
        assert ": good" in out.stdout, out.stdout + out.stderr
        assert "Response verify OK" in out.stdout + out.stderr
        leaf = x509.load_pem_x509_certificate(kept[0].read_bytes())
        r = rpc.post(
            f"/v1/certificates/{leaf.serial_number:x}/revoke", json={"reason": "keyCompromise"}
        )
        assert r.status_code == 200, r.text
        hanko("crl", "build", "-c", cfg, check=True)
        dp = leaf.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
        url = str(dp[0].full_name[0].value)  # type: ignore[index]
        got = httpx.get(status + url.split("pki.hanko.example.com", 1)[1])
        assert got.status_code == 200
        crl = x509.load_der_x509_crl(got.content)
        assert crl.issuer == old.subject
        assert crl.get_revoked_certificate_by_serial_number(leaf.serial_number) is not None
        # And a certificate of the new issuer is answered too (the responders were
        # replaced with ones that know it).
        fresh = rpc.post(
            "/v1/certificates",
            json={"csr": csr("fresh.example.co.jp"), "profile": "ov", "organization": "acme"},
        )
        assert fresh.status_code == 201, fresh.text
        fresh_pem = tmp_path / "fresh.pem"
        fresh_pem.write_text(fresh.json()["certificate"])
        assert fresh.json()["chain"] == new_pem.read_text()
        new_chain = tmp_path / "new-chain.pem"
        new_chain.write_bytes(root_pem.read_bytes() + new_pem.read_bytes())
        out = run(
            "openssl", "ocsp", "-issuer", str(new_pem), "-cert", str(fresh_pem),
            "-url", f"{status}/ocsp", "-CAfile", str(new_chain), "-no_nonce",
        )  # fmt: skip
        assert ": good" in out.stdout, out.stdout + out.stderr
        other = x509.load_pem_x509_certificate(kept[1].read_bytes())
        other_dp = other.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
        other_url = str(other_dp[0].full_name[0].value)  # type: ignore[index]
        other_crl = tmp_path / "other.crl"
        other_crl.write_bytes(
            httpx.get(status + other_url.split("pki.hanko.example.com", 1)[1]).content
        )

    # The old intermediate onto the root CRL: its chain is refused from then on.
    first_root_crl = tmp_path / "root-before.crl"
    first_root_crl.write_bytes((ca.directory / "crl" / "root.crl").read_bytes())
    before = run(
        "openssl", "verify", "-crl_check_all", "-CAfile", str(root_pem), "-untrusted",
        str(old_pem), "-CRLfile", str(crl_pem(first_root_crl)),
        "-CRLfile", str(crl_pem(other_crl)), str(kept[1]),
    )  # fmt: skip
    assert before.returncode == 0, before.stdout + before.stderr
    revoked = hanko("ca", "revoke-issuer", "-c", cfg, "e1", "--reason", "superseded", "--json")
    assert revoked.returncode == 0, revoked.stderr
    root_crl = tmp_path / "root-after.crl"
    root_crl.write_bytes(Path(json.loads(revoked.stdout)["root_crl"]).read_bytes())
    assert lint_crl(root_crl, "BR", kind="ARL") == ""
    after = run(
        "openssl", "verify", "-crl_check_all", "-CAfile", str(root_pem), "-untrusted",
        str(old_pem), "-CRLfile", str(crl_pem(root_crl)), "-CRLfile", str(crl_pem(other_crl)),
        str(kept[1]),
    )  # fmt: skip
    assert after.returncode != 0
    assert "certificate revoked" in after.stdout + after.stderr
