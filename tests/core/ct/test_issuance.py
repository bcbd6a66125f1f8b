"""Issuance with Certificate Transparency through `hanko serve`, against the tests' own
CT logs as real HTTP servers on loopback (one operator each): the final certificate
embeds the SCTs the policy asks for, each verified here against its log's key over the
precertificate's TBS and the issuer key hash; openssl lists them; pkilint passes the
precertificate the logs received and the final certificate. Logs that time out,
answer 500 or sign with another key are worked around when the policy can be met
without them; when it cannot, the request fails with 503 ct_unavailable, nothing is
charged, and the precertificate's serial is answered by OCSP and can be revoked."""

from __future__ import annotations

import datetime as dt
import hashlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from prometheus_client.parser import text_string_to_metric_families

from core.config.schedule import in_force
from core.ct.precert import without_poison
from core.ct.sct import Sct, issuer_key_hash, signed_data, verify
from tests.conftest import DevCA, Service, client, csr, lint, paying_org, serving
from tests.ct_log import SPKI, TestLog
from tests.ocsp.test_answers import ocsp_base

POISON_OID = x509.oid.ExtensionOID.PRECERT_POISON


def ct_table(logs: list[TestLog], deadline: str = "5s", finals: tuple[str, ...] = ()) -> str:
    """[ct] for these logs, appended after the config's last table; `finals`: the
    operators whose logs also take final certificates."""
    text = f'\n[ct]\ndeadline = "{deadline}"\nstagger = "1s"\nallow_private = true\n'
    for log in logs:
        if log.operator in finals:
            text += (
                f'\n[[ct.logs]]\nsubmit_final = true\nurl = "{log.url}"\nkey = "{log.key_b64}"\n'
            )
            text += f'operator = "{log.operator}"\n'
            continue
        text += f'\n[[ct.logs]]\nurl = "{log.url}"\nkey = "{log.key_b64}"\n'
        text += f'operator = "{log.operator}"\n'
    return text


@pytest.fixture
def logs() -> Iterator[list[TestLog]]:
    made: list[TestLog] = []
    yield made
    for log in made:
        log.close()


def scts_of(cert: x509.Certificate) -> list[x509.SignedCertificateTimestamp]:
    return list(
        cert.extensions.get_extension_for_class(
            x509.PrecertificateSignedCertificateTimestamps
        ).value
    )


def as_sct(s: x509.SignedCertificateTimestamp) -> Sct:
    """cryptography's parse of an embedded SCT as hanko's Sct (to reuse verify())."""
    return Sct(
        version=0,
        log_id=s.log_id,
        timestamp=int(s.timestamp.replace(tzinfo=dt.UTC).timestamp() * 1000),
        extensions=s.extension_bytes,
        hash_algorithm=4,
        signature_algorithm=3,
        signature=s.signature,
    )


def issuing(ca: DevCA) -> x509.Certificate:
    return x509.load_pem_x509_certificate((ca.directory / "ca" / "issuing.pem").read_bytes())


def ocsp(ca: DevCA, serial: str, tmp: Path) -> str:
    out = subprocess.run(
        ["openssl", "ocsp", "-issuer", str(ca.directory / "ca" / "issuing.pem"),
         "-serial", f"0x{serial}", "-url", f"{ocsp_base(ca)}/ocsp",
         "-CAfile", str(ca.directory / "ca" / "root.pem"),
         "-verify_other", str(ca.directory / "ca" / "issuing.pem")],
        capture_output=True, text=True, check=False, cwd=tmp,
    )  # fmt: skip
    assert "Response verify OK" in out.stderr, out.stdout + out.stderr
    return out.stdout


def rpc_for(service: Service) -> tuple[httpx.Client, httpx.Client]:
    base, ca, _ = service
    admin = client(base, ca, "admin")
    paying_org(admin, "acme")
    return client(base, ca, "rpc", "acme"), admin


def inventory(admin: httpx.Client) -> dict[str, object]:
    got: dict[str, object] = admin.get("/v1/admin/accounts/acme/inventory").json()
    got.pop("at")
    return got


def request(name: str = "www.example.co.jp") -> dict[str, str]:
    return {"csr": csr(name), "profile": "ov", "organization": "acme"}


def test_final_certificate_embeds_verified_scts(
    fresh_ca: DevCA, logs: list[TestLog], tmp_path: Path
) -> None:
    logs += [TestLog("google"), TestLog("cloudflare"), TestLog("digicert")]
    with serving(fresh_ca, ct_table(logs, finals=("google",))) as service:
        rpc, _ = rpc_for(service)
        r = rpc.post("/v1/certificates", json=request())
        assert r.status_code == 201, r.text
        body = r.json()
        cert = x509.load_pem_x509_certificate(body["certificate"].encode())
        view = rpc.get(f"/v1/certificates/{body['serial']}").json()
        assert (view["kind"], view["scts"]) == ("certificate", needed(cert))
        # The final certificate also goes, off the issuance path, to the log that
        # takes final certificates.
        final_der = cert.public_bytes(serialization.Encoding.DER)
        deadline = time.monotonic() + 10
        while len(logs[0].submissions) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)

    # No poison in the final certificate; the SCTs the policy asks for its validity (3
    # above 180 days, as until 2027-03-15; 2 after), each from another log.
    assert POISON_OID not in [e.oid for e in cert.extensions]
    embedded = scts_of(cert)
    assert len(embedded) == needed(cert)
    by_id = {hashes_of(log.key_der): log for log in logs}
    assert len({s.log_id for s in embedded}) == len(embedded)
    assert {s.log_id for s in embedded} <= set(by_id)

    # Each SCT verifies against its log's key over the precertificate's TBS (poison
    # removed) and the issuer key hash: with hanko's verify() and with cryptography alone.
    pre_chain = logs[0].submissions[0][1]
    precert = x509.load_der_x509_certificate(pre_chain[0])
    assert pre_chain[1] == issuing(fresh_ca).public_bytes(serialization.Encoding.DER)
    assert POISON_OID in [e.oid for e in precert.extensions]
    assert precert.extensions.get_extension_for_oid(POISON_OID).critical
    assert precert.serial_number == cert.serial_number
    log_tbs = without_poison(precert.tbs_certificate_bytes)
    # The final certificate is the precertificate less its poison plus the SCT list.
    assert cert.tbs_precertificate_bytes == log_tbs
    ikh = issuer_key_hash(issuing(fresh_ca).public_key().public_bytes(*SPKI))
    for s in embedded:
        log = by_id[s.log_id]
        data = signed_data(as_sct(s), tbs=log_tbs, issuer_key_hash=ikh)
        verify(as_sct(s), log.key_der, data)
        key = serialization.load_der_public_key(log.key_der)
        assert isinstance(key, ec.EllipticCurvePublicKey)
        key.verify(s.signature, data, ec.ECDSA(hashes.SHA256()))
    for log in logs[: needed(cert)]:  # the logs asked got this precertificate
        assert log.submissions[0][0] == "add-pre-chain"
        assert log.submissions[0][1][0] == pre_chain[0]
    assert [(kind, chain[0]) for kind, chain in logs[0].submissions[1:]] == [
        ("add-chain", final_der)
    ]
    assert [len(log.submissions) for log in logs[1 : needed(cert)]] == [1] * (needed(cert) - 1)

    final_pem = tmp_path / "final.pem"
    final_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pre_pem = tmp_path / "precert.pem"
    pre_pem.write_bytes(precert.public_bytes(serialization.Encoding.PEM))
    text = subprocess.run(
        ["openssl", "x509", "-in", str(final_pem), "-noout", "-text"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "CT Precertificate SCTs:" in text
    assert text.count("Signed Certificate Timestamp:") == 3
    assert "CT Precertificate Poison" not in text
    assert lint(final_pem, "OV-FINAL-CERTIFICATE") == []
    assert lint(pre_pem, "OV-PRE-CERTIFICATE") == []


def needed(cert: x509.Certificate) -> int:
    """The SCTs Chrome's policy asks of a certificate valid this long."""
    return 3 if (cert.not_valid_after_utc - cert.not_valid_before_utc).days > 180 else 2


def hashes_of(spki: bytes) -> bytes:
    return hashlib.sha256(spki).digest()


def test_failing_logs_are_worked_around(fresh_ca: DevCA, logs: list[TestLog]) -> None:
    # Listed first, so they are among the first asked: a log that never answers in
    # time, one that answers 500, one whose SCTs do not verify with its published key.
    logs += [
        TestLog("slowpoke", mode="slow", delay=30),
        TestLog("broken", mode="error"),
        TestLog("impostor", mode="wrong_key"),
        TestLog("google"),
        TestLog("cloudflare"),
        TestLog("digicert"),
    ]
    with serving(fresh_ca, ct_table(logs)) as service:
        rpc, admin = rpc_for(service)
        r = rpc.post("/v1/certificates", json=request())
        assert r.status_code == 201, r.text
        cert = x509.load_pem_x509_certificate(r.json()["certificate"].encode())
        stats = admin.get("/v1/statistics").json()["ct"]
        scraped = httpx.get(f"http://{fresh_ca.config.metrics.listen}/metrics").text
    failures = {
        s.labels["operator"]: s.value
        for family in text_string_to_metric_families(scraped)
        if family.name == "hanko_ct_failures"
        for s in family.samples
    }
    assert failures["broken"] == 1
    assert failures["impostor"] == 1
    assert failures["google"] == 0
    good = {hashes_of(log.key_der) for log in logs[3:]}
    assert len({s.log_id for s in scts_of(cert)}) == needed(cert)
    assert {s.log_id for s in scts_of(cert)} <= good
    for log in logs[:3]:
        assert log.submissions, f"{log.operator} was never asked"
    per_log = {entry["operator"]: entry for entry in stats["logs"]}
    assert per_log["broken"]["failures"] == 1
    assert per_log["impostor"]["invalid"] == 1
    assert per_log["slowpoke"]["abandoned"] == 1
    assert sum(per_log[op]["scts"] for op in ("google", "cloudflare", "digicert")) == needed(cert)
    assert (stats["precertificates"], stats["satisfied"], stats["unavailable"]) == (1, 1, 0)


def test_too_few_scts_fail_cleanly(fresh_ca: DevCA, logs: list[TestLog], tmp_path: Path) -> None:
    # One good log of four: 3 SCTs from 2 operators cannot be had.
    logs += [
        TestLog("slowpoke", mode="slow", delay=30),
        TestLog("broken", mode="error"),
        TestLog("impostor", mode="wrong_key"),
        TestLog("google"),
    ]
    with serving(fresh_ca, ct_table(logs, deadline="2s")) as service:
        # check-config would say so too, with every log answering: here it is the
        # failures that leave too few.
        rpc, admin = rpc_for(service)
        ledger = admin.get("/v1/admin/accounts/acme/ledger").json()
        balance = inventory(admin)
        r = rpc.post("/v1/certificates", json=request())
        assert r.status_code == 503, r.text
        err = r.json()
        assert (err["error"], err["kind"]) == ("ct_unavailable", "precertificate")
        serial = err["serial"]
        assert f"serial {serial} is a precertificate only" in err["detail"]
        batch = rpc.post("/v1/certificates:batch", json={"requests": [request(), request()]})
        assert batch.status_code == 200
        items = [item["error"] for item in batch.json()["results"]]
        assert [i["error"] for i in items] == ["ct_unavailable"] * 2
        assert len({i["serial"] for i in items} | {serial}) == 3

        # Nothing charged, no ledger entry.
        assert admin.get("/v1/admin/accounts/acme/ledger").json() == ledger
        assert inventory(admin) == balance
        assert admin.get("/v1/admin/licenses/check").status_code == 200
        listed = admin.get("/v1/admin/accounts/acme/certificates").text
        assert serial not in listed  # nobody's certificate
        view = rpc.get(f"/v1/certificates/{serial}").json()
        assert (view["kind"], view["status"], view["scts"]) == ("precertificate", "good", 0)
        pre = x509.load_pem_x509_certificate(view["certificate"].encode())
        assert POISON_OID in [e.oid for e in pre.extensions]

        # The promise is kept: OCSP answers for the serial, and it can be revoked.
        assert f"0x{serial}: good" in ocsp(fresh_ca, serial, tmp_path).lower()
        r = rpc.post(f"/v1/certificates/{serial}/revoke", json={"reason": "superseded"})
        assert r.status_code == 200, r.text
        time.sleep(1.0)  # the responders' promise: revoked within 1 s (tests/ocsp/test_answers.py)
        assert f"0x{serial}: revoked" in ocsp(fresh_ca, serial, tmp_path).lower()
        stats = admin.get("/v1/statistics").json()["ct"]
    assert (stats["precertificates"], stats["satisfied"], stats["unavailable"]) == (3, 0, 3)
    assert {e["operator"]: e["timeouts"] for e in stats["logs"]}["slowpoke"] == 3


def test_a_profile_can_go_without_ct(fresh_ca: DevCA, logs: list[TestLog]) -> None:
    logs += [TestLog("google"), TestLog("cloudflare"), TestLog("digicert")]
    private = '\n[issuance.profiles.ov]\nlevel = "ov"\nct = false\n'
    with serving(
        fresh_ca, {"replace": [("\n[ocsp]\n", private + "\n[ocsp]\n")], "append": ct_table(logs)}
    ) as service:
        rpc, _ = rpc_for(service)
        r = rpc.post("/v1/certificates", json=request())
        assert r.status_code == 201, r.text
        cert = x509.load_pem_x509_certificate(r.json()["certificate"].encode())
    with pytest.raises(x509.ExtensionNotFound):
        scts_of(cert)
    assert [log.submissions for log in logs] == [[], [], []]


def test_acme_orders_get_scts_and_a_retryable_error_without_them(
    fresh_ca: DevCA, logs: list[TestLog]
) -> None:
    from acme import errors as acme_errors

    from tests.core.api.test_acme import Acme, make_eab

    logs += [TestLog("google"), TestLog("cloudflare"), TestLog("digicert", mode="error")]
    with serving(fresh_ca, ct_table(logs)) as (base, ca, _):
        paying_org(client(base, ca, "admin"), "acme")
        acme = Acme(base, ca)
        acme.register(make_eab(base, ca))
        order = acme.client.new_order(csr("www.example.co.jp", "example.co.jp").encode())
        if needed_days(fresh_ca) > 180:
            # 3 SCTs needed, 2 logs answer: the order stays ready for a later finalize.
            with pytest.raises(acme_errors.Error) as err:
                acme.client.poll_and_finalize(order)
            assert "ct_unavailable" in str(err.value)
            assert "serverInternal" in str(err.value.typ)
            logs[2].mode = "ok"  # the log is back
        done = acme.client.poll_and_finalize(order)
    leaf = x509.load_pem_x509_certificates(done.fullchain_pem.encode())[0]
    assert len(scts_of(leaf)) == needed(leaf)


def needed_days(ca: DevCA) -> int:
    """The default validity, in days, of an OV certificate issued today."""
    rule = in_force(ca.config.issuance.validity_schedule, dt.datetime.now(dt.UTC))
    return rule.max_days - 1
