"""Several issuing CAs at once, through the commands a user runs: `hanko ca issuer
create | activate | retire | list` and `hanko ca revoke-issuer`, then `hanko serve`
issuing from an ECDSA and an RSA intermediate side by side, each certificate on its
own chain, OCSP (openssl, GnuTLS) and CRLs answering for both, the root CRL revoking
one. Real SoftHSM, openssl, GnuTLS and pkilint."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID

from tests.conftest import (
    DevCA,
    client,
    crl_pem,
    hanko,
    lint,
    lint_crl,
    lint_ocsp,
    paying_org,
    serving,
)

pytestmark = pytest.mark.slow


def rsa_csr(name: str) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
        .decode()
    )


def ec_csr(name: str) -> str:
    from tests.conftest import csr

    return csr(name)


def ski(cert: x509.Certificate) -> bytes:
    return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest


def aki(cert: x509.Certificate) -> bytes | None:
    return cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, check=False, timeout=60)


def issuer_list(ca: DevCA) -> dict[str, dict[str, object]]:
    out = hanko("ca", "issuer", "list", "-c", str(ca.config_path), "--json", check=True)
    return {row["name"]: row for row in json.loads(out.stdout)}


def test_lifecycle_refusals(fresh_ca: DevCA) -> None:
    cfg = str(fresh_ca.config_path)
    before = fresh_ca.config_path.read_text()
    for args, words in (
        (["create", "-c", cfg, "--name", "e1"], "exists already"),
        (["create", "-c", cfg, "--name", "Bad_Name"], "--name"),
        (["activate", "-c", cfg, "nosuch"], "no issuer named"),
        (["activate", "-c", cfg, "e1", "--profiles", "dv"], "no such profile"),
        (["retire", "-c", cfg, "e1"], "leaves no active issuer"),
    ):
        done = hanko("ca", "issuer", *args)
        assert done.returncode != 0, args
        assert words in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert fresh_ca.config_path.read_text() == before
    bad = hanko("ca", "revoke-issuer", "-c", cfg, "e1", "--reason", "unspecified")
    assert bad.returncode != 0
    assert "Traceback" not in bad.stderr


def test_two_issuers_of_two_key_types(fresh_ca: DevCA, tmp_path: Path) -> None:
    ca = fresh_ca
    cfg = str(ca.config_path)
    created = hanko(
        "ca", "issuer", "create", "-c", cfg, "--name", "r1", "--key-type", "rsa-2048", "--json"
    )
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["state"] == "inactive"
    assert issuer_list(ca)["r1"]["state"] == "inactive"
    hanko("ca", "issuer", "activate", "-c", cfg, "r1", "--profiles", "ov,ev", check=True)
    hanko("check-config", "-c", cfg, check=True)
    listed = issuer_list(ca)
    assert (listed["e1"]["state"], listed["e1"]["key_type"]) == ("active", "ecdsa-p256")
    assert (listed["r1"]["state"], listed["r1"]["key_type"]) == ("active", "rsa-2048")
    assert listed["r1"]["profiles"] == ["ev", "ov"]

    root_pem = ca.directory / "ca" / "root.pem"
    issuers = {
        "e1": ca.directory / "ca" / "issuing.pem",
        "r1": ca.directory / "ca" / "issuers" / "r1.pem",
    }
    certs = {n: x509.load_pem_x509_certificate(p.read_bytes()) for n, p in issuers.items()}
    assert run("openssl", "verify", "-CAfile", str(root_pem), str(issuers["r1"])).returncode == 0

    with serving(ca) as (base, _, _proc):
        admin = client(base, ca, "admin")
        paying_org(admin, "acme")
        rpc = client(base, ca, "rpc", "acme")
        status = f"http://{ca.config.ocsp.listen}"
        issued: dict[str, x509.Certificate] = {}
        first: dict[str, Path] = {}
        for kind, make in (("e1", ec_csr), ("r1", rsa_csr)):
            for _ in range(3):  # the choice among issuers of the key's type is never the other
                r = rpc.post(
                    "/v1/certificates",
                    json={"csr": make(f"{kind}.example.co.jp"), "profile": "ov",
                          "organization": "acme"},
                )  # fmt: skip
                assert r.status_code == 201, r.text
                body = r.json()
                leaf = x509.load_pem_x509_certificate(body["certificate"].encode())
                assert aki(leaf) == ski(certs[kind]), kind
                assert body["chain"] == issuers[kind].read_text()
                if kind not in first:
                    first[kind] = tmp_path / f"{kind}-first.pem"
                    first[kind].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
            issued[kind] = leaf
            leaf_pem = tmp_path / f"{kind}.pem"
            leaf_pem.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
            done = run(
                "openssl", "verify", "-CAfile", str(root_pem), "-untrusted", str(issuers[kind]),
                str(leaf_pem),
            )  # fmt: skip
            assert done.returncode == 0, done.stdout + done.stderr
            assert lint(leaf_pem, "OV-FINAL-CERTIFICATE") == [], kind
            # Its URLs are its issuer's: its CRL folder and its certificate.
            dp = leaf.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
            crl_url = str(dp[0].full_name[0].value)  # type: ignore[index]
            # The first issuer publishes at the top of the CRL path, later ones below it.
            assert crl_url.rsplit("/", 2)[-2] == ("crl" if kind == "e1" else kind)
            aia = leaf.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
            ca_url = next(
                str(d.access_location.value) for d in aia if "ca/" in str(d.access_location.value)
            )
            cer = "issuing" if kind == "e1" else kind
            assert ca_url.endswith(f"/ca/{cer}.cer")
            served = httpx.get(f"{status}/ca/{cer}.cer")
            assert served.status_code == 200
            assert served.content in (
                certs[kind].public_bytes(serialization.Encoding.DER),
                certs[kind].public_bytes(serialization.Encoding.PEM),
            )

            # OCSP for each issuer's certificate: openssl (POST) and GnuTLS (GET).
            chain = tmp_path / f"{kind}-chain.pem"
            chain.write_bytes(root_pem.read_bytes() + issuers[kind].read_bytes())
            out = run(
                "openssl", "ocsp", "-issuer", str(issuers[kind]), "-cert", str(leaf_pem),
                "-url", f"{status}/ocsp", "-CAfile", str(chain), "-no_nonce",
            )  # fmt: skip
            assert "Response verify OK" in out.stdout + out.stderr, out.stdout + out.stderr
            assert ": good" in out.stdout, out.stdout
            gnutls_out = tmp_path / f"{kind}-gnutls.der"
            out = run(
                "ocsptool", f"--ask={status}/ocsp", "--load-cert", str(leaf_pem),
                "--load-issuer", str(issuers[kind]), "--outfile", str(gnutls_out),
            )  # fmt: skip
            assert out.returncode == 0, out.stdout + out.stderr
            out = run("ocsptool", "-e", "--load-signer", str(issuers[kind]), "--infile",
                      str(gnutls_out))  # fmt: skip
            assert "Verifying OCSP Response: Success" in out.stdout + out.stderr
            assert lint_ocsp(gnutls_out) == []

        # The stapling export holds each issuer's responses, each verifying under its issuer.
        export = tmp_path / "staple"
        hanko("ocsp", "export", "-c", cfg, "--out", str(export), check=True)
        for kind, leaf in issued.items():
            octets = leaf.serial_number.to_bytes((leaf.serial_number.bit_length() + 7) // 8, "big")
            staple = export / f"{octets.hex()}.der"
            chain = tmp_path / f"{kind}-chain.pem"
            out = run(
                "openssl", "ocsp", "-respin", str(staple), "-issuer", str(issuers[kind]),
                "-cert", str(tmp_path / f"{kind}.pem"), "-CAfile", str(chain), "-no_nonce",
            )  # fmt: skip
            assert "Response verify OK" in out.stdout + out.stderr, out.stdout + out.stderr
            assert ": good" in out.stdout, out.stdout

        # A CertID naming one issuer with the serial of the other's certificate: not ours.
        # SHA-1 CertIDs: what RFC 9919 responders must answer (never a security hash here).
        sha1 = hashes.SHA1()  # noqa: S303
        crossed = (
            ocsp.OCSPRequestBuilder()
            .add_certificate_by_hash(
                ocsp.OCSPRequestBuilder()
                .add_certificate(issued["e1"], certs["e1"], sha1)
                .build()
                .issuer_name_hash,
                ocsp.OCSPRequestBuilder()
                .add_certificate(issued["e1"], certs["e1"], sha1)
                .build()
                .issuer_key_hash,
                issued["r1"].serial_number,
                sha1,
            )
            .build()
        )
        answer = httpx.post(
            f"{status}/ocsp",
            content=crossed.public_bytes(serialization.Encoding.DER),
            headers={"content-type": "application/ocsp-request"},
        )
        assert ocsp.load_der_ocsp_response(answer.content).response_status == (
            ocsp.OCSPResponseStatus.UNAUTHORIZED
        )

        # Revocations reach each issuer's own CRL, signed by it, with its own IDP.
        for leaf in issued.values():
            r = rpc.post(
                f"/v1/certificates/{leaf.serial_number:x}/revoke", json={"reason": "keyCompromise"}
            )
            assert r.status_code == 200, r.text
        hanko("crl", "build", "-c", cfg, check=True)
        for kind, leaf in issued.items():
            dp = leaf.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
            url = str(dp[0].full_name[0].value)  # type: ignore[index]
            path = url.split("pki.hanko.example.com", 1)[1]
            got = httpx.get(status + path)
            assert got.status_code == 200, (url, got.status_code)
            der = tmp_path / f"{kind}.crl"
            der.write_bytes(got.content)
            crl = x509.load_der_x509_crl(got.content)
            assert crl.issuer == certs[kind].subject
            assert crl.get_revoked_certificate_by_serial_number(leaf.serial_number) is not None
            idp = crl.extensions.get_extension_for_class(x509.IssuingDistributionPoint)
            assert idp.critical
            assert str(idp.value.full_name[0].value) == url  # type: ignore[index]
            check = run("openssl", "crl", "-inform", "DER", "-in", str(der), "-noout", "-CAfile",
                        str(issuers[kind]))  # fmt: skip
            assert "verify OK" in check.stdout + check.stderr, check.stdout + check.stderr
            assert lint_crl(der, "BR") == "", kind

        for kind, path in first.items():
            leaf = x509.load_pem_x509_certificate(path.read_bytes())
            dp = leaf.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
            url = str(dp[0].full_name[0].value)  # type: ignore[index]
            got = httpx.get(status + url.split("pki.hanko.example.com", 1)[1])
            assert got.status_code == 200
            (tmp_path / f"{kind}-first.crl").write_bytes(got.content)

        urls = client(base, ca, "admin").get("/crl/urls.json").json()
        by_name = {entry["name"]: entry for entry in urls["issuers"]}
        assert set(by_name) == {"e1", "r1"}
        for kind in ("e1", "r1"):
            assert by_name[kind]["issuer_key_id"] == ski(certs[kind]).hex()
            folder = "crl" if kind == "e1" else kind
            assert all(u.rsplit("/", 2)[-2] == folder for u in by_name[kind]["crl_urls"])
        assert sorted(urls["crl_urls"]) == sorted(
            u for entry in urls["issuers"] for u in entry["crl_urls"]
        )

    listed = issuer_list(ca)
    assert (listed["e1"]["certificates_valid"], listed["r1"]["certificates_valid"]) == (3, 3)

    # Retire r1 (e1 still serves every profile), then revoke it onto the root CRL.
    hanko("ca", "issuer", "retire", "-c", cfg, "r1", check=True)
    assert issuer_list(ca)["r1"]["state"] == "retired"
    assert issuer_list(ca)["r1"]["status_until"]
    revoked = hanko(
        "ca", "revoke-issuer", "-c", cfg, "r1", "--reason", "cessationOfOperation", "--json"
    )
    assert revoked.returncode == 0, revoked.stderr
    root_crl = Path(json.loads(revoked.stdout)["root_crl"])
    assert issuer_list(ca)["r1"]["state"] == "revoked"
    crl = x509.load_der_x509_crl(root_crl.read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(certs["r1"].serial_number) is not None
    assert crl.get_revoked_certificate_by_serial_number(certs["e1"].serial_number) is None
    assert lint_crl(root_crl, "BR", kind="ARL") == ""
    root_crl_pem = crl_pem(root_crl)
    for kind, expect_ok in (("e1", True), ("r1", False)):
        # A certificate not revoked itself, its chain checked against CRLs: the root's
        # refuses r1's intermediate.
        out = run(
            "openssl", "verify", "-crl_check_all", "-CAfile", str(root_pem), "-untrusted",
            str(issuers[kind]), "-CRLfile", str(root_crl_pem), "-CRLfile",
            str(crl_pem(tmp_path / f"{kind}-first.crl")), str(first[kind]),
        )  # fmt: skip
        assert (out.returncode == 0) == expect_ok, (kind, out.stdout + out.stderr)
        if not expect_ok:
            assert "certificate revoked" in out.stdout + out.stderr


def test_an_issuer_for_an_offline_root(fresh_ca: DevCA, tmp_path: Path) -> None:
    from core.ca import certs as ca_certs
    from core.ca.hsm import hsm_session, signing_key
    from signer.algorithms import KeyType

    ca = fresh_ca
    cfg = str(ca.config_path)
    before = ca.config_path.read_text()
    csr_path = tmp_path / "x1.csr"
    made = hanko("ca", "issuer", "create", "-c", cfg, "--name", "x1", "--csr-out", str(csr_path))
    assert made.returncode == 0, made.stderr
    assert ca.config_path.read_text() == before  # nothing to use until the root signed
    request = x509.load_pem_x509_csr(csr_path.read_bytes())
    assert request.is_signature_valid
    assert "TLS Issuing CA X1" in request.subject.rfc4514_string()

    # The offline root's ceremony, here with the root key of the test's token.
    root = x509.load_pem_x509_certificate((ca.directory / "ca" / "root.pem").read_bytes())
    with hsm_session(ca.config) as session:
        signed = ca_certs.build_issuing_ca(
            org="Hanko Development", common_name="Hanko Development TLS Issuing CA X1",
            public_key=request.public_key(), root=root,  # type: ignore[arg-type]
            root_key=signing_key(session, "hanko-root-1"), key_type=KeyType.ECDSA_P256,
            base_url="http://pki.hanko.example.com", now=root.not_valid_before_utc,
        )  # fmt: skip
    cert_path = tmp_path / "x1.pem"
    cert_path.write_bytes(signed.public_bytes(serialization.Encoding.PEM))

    stranger = tmp_path / "stranger.pem"
    stranger.write_bytes((ca.directory / "ca" / "ocsp-responder.pem").read_bytes())
    for name, path, words in (
        ("x1", stranger, "not signed by this CA's root"),
        ("x2", cert_path, "hanko-issuing-x2"),
        ("x1", tmp_path / "missing.pem", "not a readable PEM certificate"),
    ):
        bad = hanko("ca", "issuer", "import", "-c", cfg, "--name", name, "--cert", str(path))
        assert bad.returncode != 0
        assert words in bad.stderr, bad.stderr
        assert len(bad.stderr.strip().splitlines()) == 1, bad.stderr
        assert ca.config_path.read_text() == before

    done = hanko("ca", "issuer", "import", "-c", cfg, "--name", "x1", "--cert", str(cert_path))
    assert done.returncode == 0, done.stderr
    assert issuer_list(ca)["x1"]["state"] == "inactive"
    responder = x509.load_pem_x509_certificate(
        (ca.directory / "ca" / "issuers" / "x1-ocsp.pem").read_bytes()
    )
    responder.verify_directly_issued_by(signed)
    hanko("check-config", "-c", cfg, check=True)


def test_the_one_issuer_form_loads_and_is_rewritten(fresh_ca: DevCA) -> None:
    from core.config.edit import with_issuers

    ca = fresh_ca
    cfg = str(ca.config_path)
    base = 'base_url = "http://pki.hanko.example.com"\n'
    legacy = with_issuers(ca.config_path.read_text(), []).replace(
        base,
        base + 'issuer_cert = "ca/issuing.pem"\nissuer_key_label = "hanko-issuing-1"\n'
        'ocsp_responder_cert = "ca/ocsp-responder.pem"\n'
        'ocsp_responder_key_label = "hanko-ocsp-1"\n',
    )
    assert "[[ca.issuers]]" not in legacy
    ca.config_path.write_text(legacy)
    checked = hanko("check-config", "-c", cfg, check=True)
    assert "one-issuer form" in checked.stdout
    assert "[[ca.issuers]]" in checked.stdout
    assert list(issuer_list(ca)) == ["issuing"]

    hanko("ca", "issuer", "create", "-c", cfg, "--name", "r1", "--key-type", "rsa-2048",
          check=True)  # fmt: skip
    rewritten = ca.config
    assert rewritten.ca.issuer_cert == ""
    first, second = rewritten.issuers()
    assert (first.name, second.name) == ("issuing", "r1")
    # The URLs its certificates carry are kept.
    assert first.crl_url == "http://pki.hanko.example.com/crl"
    assert first.issuer_url == "http://pki.hanko.example.com/ca/issuing.cer"
    assert first.config.profiles == ["*"]
    again = hanko("check-config", "-c", cfg, check=True)
    assert "one-issuer form" not in again.stdout
