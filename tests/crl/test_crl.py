"""Partition CRLs from real revocations, checked by openssl, GnuTLS and pkilint."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from core.base.clock import FixedClock
from core.base.reasons import RevocationReason
from core.cmd.wiring import crl_publisher
from core.issuance.engine import IssuanceEngine
from core.issuance.messages import IssueRequest
from crl.encoder import revoked_entry, tbs_cert_list
from crl.publisher import PublishedCrl
from tests.conftest import DevCA, crl_pem, dns_lab, hanko, lint_crl, openssl_crl_check, use_resolver
from tests.core.issuance.test_engine import csr_pem, run, setup

# An hour ago: revocations advance the clock, and everything must lie in the past for
# openssl and GnuTLS to accept the CRLs.
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=1)


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Twelve certificates, four revoked with different reasons, CRLs published twice."""
    root = tmp_path_factory.mktemp("crl")
    hanko("init", str(root / "ca"), check=True)
    use_resolver(root / "ca" / "hanko.toml", dns_lab().resolver)
    ca = DevCA(root / "ca", root / "ca" / "hanko.toml", "ecdsa-p256")
    clock = FixedClock(NOW)
    out = root / "published"
    reasons = {1: "keyCompromise", 4: "unspecified", 7: "cessationOfOperation", 9: "superseded"}

    async def job(engine: IssuanceEngine) -> dict[str, Any]:
        certs = [
            await engine.issue(
                IssueRequest(
                    csr=csr_pem([f"h{i}.example.co.jp"]), profile="ov", organization="crl"
                ),
                actor="t",
            )
            for i in range(12)
        ]
        for i, reason in reasons.items():
            clock.advance(dt.timedelta(minutes=i))
            await engine.revoke(certs[i].serial, reason, actor="t")  # type: ignore[arg-type]
        publisher = crl_publisher(
            ca.config,
            signer=engine.signer,
            store=engine.store,
            writer=engine.writer,
            clock=clock,
            directory=out,
        )
        partitions = range(ca.config.crl.partitions)
        first = [(await publisher.publish_full(p))[0] for p in partitions]
        first_der = [c.read() for c in first]
        second = [(await publisher.publish_full(p))[0] for p in partitions]
        return {"certs": certs, "first": first, "first_der": first_der, "second": second}

    data = run(ca, clock, job, **setup("crl", NOW))
    data.update(ca=ca, out=out, reasons=reasons, root=root)
    return data


def cert_file(scenario: dict[str, Any], i: int) -> Path:
    path = scenario["root"] / f"leaf{i}.pem"
    path.write_text(scenario["certs"][i].certificate)
    return path


def partition_of(scenario: dict[str, Any], i: int) -> int:
    cert = x509.load_pem_x509_certificate(scenario["certs"][i].certificate.encode())
    url = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value[0]
    return int(url.full_name[0].value.rsplit("/", 1)[1].split(".")[0])


def test_every_crl_verifies_and_lints_clean(scenario: dict[str, Any]) -> None:
    ca_dir = scenario["ca"].directory / "ca"
    for crl in scenario["second"]:
        result = openssl_crl_check(crl.path, ca_dir / "issuing.pem")
        assert result.returncode == 0, result.stderr
        assert "verify OK" in result.stdout + result.stderr
        findings = lint_crl(crl.path, "BR")
        assert findings == "", findings


def test_gnutls_verifies_the_crls(scenario: dict[str, Any]) -> None:
    issuing = scenario["ca"].directory / "ca" / "issuing.pem"
    for crl in scenario["second"][:4]:
        pem = crl_pem(crl.path)
        result = subprocess.run(
            [
                "certtool",
                "--verify-crl",
                "--load-ca-certificate",
                str(issuing),
                "--infile",
                str(pem),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Verified" in result.stdout + result.stderr


def test_revoked_certificates_appear_in_their_own_partition_only(scenario: dict[str, Any]) -> None:
    by_partition = {c.partition: x509.load_der_x509_crl(c.read()) for c in scenario["second"]}
    reason_codes = {
        "keyCompromise": x509.ReasonFlags.key_compromise,
        "cessationOfOperation": x509.ReasonFlags.cessation_of_operation,
        "superseded": x509.ReasonFlags.superseded,
    }
    for i, cert in enumerate(scenario["certs"]):
        serial = int(cert.serial, 16)
        home = partition_of(scenario, i)
        for partition, crl in by_partition.items():
            entry = crl.get_revoked_certificate_by_serial_number(serial)
            if partition != home or i not in scenario["reasons"]:
                assert entry is None
                continue
            assert entry is not None
            reason = scenario["reasons"][i]
            if reason == "unspecified":
                assert not list(entry.extensions)  # BR: no reasonCode for unspecified
            else:
                assert (
                    entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
                    == (reason_codes[reason])
                )
            assert entry.revocation_date_utc == NOW + sum(
                (dt.timedelta(minutes=k) for k in scenario["reasons"] if k <= i), dt.timedelta()
            )


def test_openssl_crl_check_good_and_revoked(scenario: dict[str, Any]) -> None:
    ca_dir = scenario["ca"].directory / "ca"
    for i in (0, 1, 4):
        crl = next(c for c in scenario["second"] if c.partition == partition_of(scenario, i))
        pem = crl_pem(crl.path)
        result = subprocess.run(
            [
                "openssl",
                "verify",
                "-crl_check",
                "-CAfile",
                str(ca_dir / "root.pem"),
                "-untrusted",
                str(ca_dir / "issuing.pem"),
                "-CRLfile",
                str(pem),
                str(cert_file(scenario, i)),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if i in scenario["reasons"]:
            assert result.returncode != 0
            assert "certificate revoked" in result.stdout + result.stderr
        else:
            assert result.returncode == 0, result.stdout + result.stderr


def test_crl_numbers_only_grow(scenario: dict[str, Any]) -> None:
    first: list[PublishedCrl] = scenario["first"]
    second: list[PublishedCrl] = scenario["second"]
    for a, b in zip(first, second, strict=True):
        assert b.number > a.number
        crl = x509.load_der_x509_crl(b.read())
        assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == b.number
        idp = crl.extensions.get_extension_for_class(x509.IssuingDistributionPoint)
        assert idp.critical
        assert idp.value.full_name[0].value.endswith(f"/crl/{b.partition}.crl")
        assert crl.next_update_utc - crl.last_update_utc <= dt.timedelta(days=10)


def test_encoder_matches_cryptography_for_entries() -> None:
    at = dt.datetime(2026, 5, 1, 12, 0, tzinfo=dt.UTC)
    entries = b"".join(
        revoked_entry(s, at, r)
        for s, r in [
            (1, RevocationReason.UNSPECIFIED),
            (2**159 - 1, RevocationReason.KEY_COMPROMISE),
            (128, RevocationReason.PRIVILEGE_WITHDRAWN),
        ]
    )
    from signer.algorithms import KeyType
    from signer.splice import assemble, signature_algorithm_der

    alg, sig = signature_algorithm_der(KeyType.ECDSA_P256)
    tbs = tbs_cert_list(
        signature_algorithm=alg,
        issuer_name=x509.Name([]).public_bytes(),
        this_update=at,
        next_update=at + dt.timedelta(days=7),
        entries=entries,
        crl_number=5,
        authority_key_id=b"k" * 20,
        idp_url="http://x.example.com/1.crl",
    )
    crl = x509.load_der_x509_crl(assemble(tbs, alg, sig))
    assert [r.serial_number for r in crl] == [1, 2**159 - 1, 128]
    assert crl[1].extensions.get_extension_for_class(x509.CRLReason).value.reason == (
        x509.ReasonFlags.key_compromise
    )
    assert crl[2].extensions.get_extension_for_class(x509.CRLReason).value.reason == (
        x509.ReasonFlags.privilege_withdrawn
    )
    empty = x509.load_der_x509_crl(
        assemble(
            tbs_cert_list(
                signature_algorithm=alg,
                issuer_name=x509.Name([]).public_bytes(),
                this_update=at,
                next_update=at + dt.timedelta(days=1),
                entries=b"",
                crl_number=6,
                authority_key_id=b"k" * 20,
                idp_url="http://x.example.com/1.crl",
            ),
            alg,
            sig,
        )
    )
    assert len(empty) == 0


def test_cli_crl(scenario: dict[str, Any]) -> None:
    ca = scenario["ca"]
    urls = hanko("crl", "urls", "-c", str(ca.config_path))
    assert urls.returncode == 0
    assert urls.stdout.split() == [
        f"http://pki.hanko.example.com/crl/{p}.crl" for p in range(ca.config.crl.partitions)
    ]
    built = hanko("crl", "-c", str(ca.config_path), "--json")
    assert built.returncode == 0, built.stderr
    import json

    numbers = [c["number"] for c in json.loads(built.stdout)]
    assert all(n > max(c.number for c in scenario["second"]) - 100 for n in numbers)
    assert (ca.directory / "crl" / "0.crl").exists()


def test_cli_crl_unwritable_folder_is_one_line(scenario: dict[str, Any]) -> None:
    ca = scenario["ca"]
    blocker = scenario["root"] / "not-a-folder"
    blocker.write_text("a file where the publish folder should be")
    result = hanko("crl", "-c", str(ca.config_path), "--all", "--out", str(blocker / "crl"))
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        f"hanko: error: cannot publish CRLs in {blocker / 'crl'}: Not a directory"
    ]
