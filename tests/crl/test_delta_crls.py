"""Delta CRLs, pruning of expired entries, refusals and the updater's schedule, with a
real SoftHSM token and LMDB, checked by openssl, GnuTLS and pkilint."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path
from typing import Any

import msgspec
import pytest
from cryptography import x509

from core.base.clock import FixedClock
from core.base.errors import NotFound, PolicyError
from core.cmd.wiring import crl_publisher, crl_updater
from core.config import Config, ProfileConfig
from core.issuance.engine import IssuanceEngine
from core.issuance.messages import IssueRequest
from crl.schedule import Kind
from tests.conftest import DevCA, crl_pem, dns_lab, hanko, lint_crl, openssl_crl_check, use_resolver
from tests.core.issuance.test_engine import csr_pem, run, setup

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=2)


def private_pki(ca: DevCA) -> Config:
    """Two partitions and a profile with delta CRLs and narrowed revocation reasons."""
    cfg = ca.config
    profiles = dict(cfg.issuance.profiles)
    profiles["private"] = ProfileConfig(
        level="ov",
        delta_crl=True,
        revocation_reasons=["unspecified", "keyCompromise", "superseded"],
    )
    issuance = msgspec.structs.replace(cfg.issuance, profiles=profiles)
    crl = msgspec.structs.replace(cfg.crl, partitions=2)
    return msgspec.structs.replace(cfg, issuance=issuance, crl=crl)


@pytest.fixture(scope="module")
def deltas(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("delta")
    hanko("init", str(root / "ca"), check=True)
    use_resolver(root / "ca" / "hanko.toml", dns_lab().resolver)
    ca = DevCA(root / "ca", root / "ca" / "hanko.toml", "ecdsa-p256")
    cfg = private_pki(ca)
    clock = FixedClock(NOW)
    out = root / "published"

    async def job(engine: IssuanceEngine) -> dict[str, Any]:
        publisher = crl_publisher(
            cfg,
            signer=engine.signer,
            store=engine.store,
            writer=engine.writer,
            clock=clock,
            directory=out,
        )
        certs = [
            await engine.issue(
                IssueRequest(
                    csr=csr_pem([f"d{i}.example.co.jp"]), profile="private", organization="dl"
                ),
                actor="t",
            )
            for i in range(8)
        ]
        base = [c for p in range(2) for c in await publisher.publish_full(p)]
        base_der = {c.partition: c.read() for c in base if c.kind is Kind.FULL}
        clock.advance(dt.timedelta(minutes=5))
        await engine.revoke(certs[0].serial, "keyCompromise", actor="t")
        await engine.revoke(certs[1].serial, "unspecified", actor="t")
        refused: dict[str, str] = {}
        try:
            await engine.revoke(certs[2].serial, "privilegeWithdrawn", actor="t")
        except PolicyError as exc:
            refused["reason"] = exc.code
        try:
            await engine.revoke("0badc0de", "keyCompromise", actor="t")
        except NotFound as exc:
            refused["unknown"] = exc.code
        clock.advance(dt.timedelta(minutes=5))
        delta = [await publisher.publish_delta(p) for p in range(2)]
        delta_der = {c.partition: c.read() for c in delta}
        clock.advance(dt.timedelta(minutes=5))
        rebuilt = [c for p in range(2) for c in await publisher.publish_full(p)]
        rebuilt_der = {(c.partition, c.kind): c.read() for c in rebuilt}
        (out / "0-delta.crl").unlink()
        restored = [
            (c.partition, c.kind, c.number, c.read())
            for c in await crl_updater(cfg, publisher).update_once()
        ]
        return {
            "rebuilt_der": rebuilt_der,
            "restored": restored,
            "certs": certs,
            "base": base,
            "base_der": base_der,
            "delta": delta,
            "delta_der": delta_der,
            "rebuilt": rebuilt,
            "refused": refused,
            "status": engine.view(certs[2].serial).status,
        }

    data = run(ca, clock, job, config=cfg, **setup("dl", NOW))
    data.update(ca=ca, root=root)
    return data


def partition_of(pem: str) -> int:
    cert = x509.load_pem_x509_certificate(pem.encode())
    dp = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value[0]
    return int(dp.full_name[0].value.rsplit("/", 1)[1].split(".")[0])


def test_certificates_point_at_their_partitions_delta(deltas: dict[str, Any]) -> None:
    for c in deltas["certs"]:
        cert = x509.load_pem_x509_certificate(c.certificate.encode())
        fresh = cert.extensions.get_extension_for_class(x509.FreshestCRL).value[0]
        assert fresh.full_name[0].value.endswith(f"/crl/{partition_of(c.certificate)}-delta.crl")


def test_delta_lists_exactly_the_new_revocations_against_its_base(deltas: dict[str, Any]) -> None:
    base_numbers = {c.partition: c.number for c in deltas["base"] if c.kind is Kind.FULL}
    revoked = {int(deltas["certs"][i].serial, 16): i for i in (0, 1)}
    for p, der in deltas["delta_der"].items():
        crl = x509.load_der_x509_crl(der)
        indicator = crl.extensions.get_extension_for_class(x509.DeltaCRLIndicator)
        assert indicator.critical
        assert indicator.value.crl_number == base_numbers[p]
        number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
        assert number > base_numbers[p]
        idp = crl.extensions.get_extension_for_class(x509.IssuingDistributionPoint).value
        assert idp.full_name[0].value.endswith(f"/crl/{p}.crl")  # the base's scope
        want = {s for s, i in revoked.items() if partition_of(deltas["certs"][i].certificate) == p}
        assert {r.serial_number for r in crl} == want
    # The bases were published before the revocations, and point at their deltas.
    for p, der in deltas["base_der"].items():
        base = x509.load_der_x509_crl(der)
        assert len(base) == 0
        fresh = base.extensions.get_extension_for_class(x509.FreshestCRL).value[0]
        assert fresh.full_name[0].value.endswith(f"/crl/{p}-delta.crl")


def test_after_a_new_base_the_delta_is_empty_and_the_full_crl_has_everything(
    deltas: dict[str, Any],
) -> None:
    full = {c.partition: c for c in deltas["rebuilt"] if c.kind is Kind.FULL}
    listed = set()
    for p in range(2):
        crl = x509.load_der_x509_crl(deltas["rebuilt_der"][p, Kind.FULL])
        listed |= {r.serial_number for r in crl}
        d = x509.load_der_x509_crl(deltas["rebuilt_der"][p, Kind.DELTA])
        assert len(d) == 0
        assert d.extensions.get_extension_for_class(x509.DeltaCRLIndicator).value.crl_number == (
            full[p].number
        )
    assert listed == {int(deltas["certs"][i].serial, 16) for i in (0, 1)}


def test_a_missing_delta_file_is_rebuilt_by_the_updater(deltas: dict[str, Any]) -> None:
    before = next(c.number for c in deltas["rebuilt"] if c.kind is Kind.DELTA and c.partition == 0)
    base = next(c.number for c in deltas["rebuilt"] if c.kind is Kind.FULL and c.partition == 0)
    [(partition, kind, number, der)] = deltas["restored"]
    assert (partition, kind) == (0, Kind.DELTA)
    assert number > before
    # Still the delta of the same base, with nothing new to list.
    d = x509.load_der_x509_crl(der)
    assert len(d) == 0
    assert d.extensions.get_extension_for_class(x509.DeltaCRLIndicator).value.crl_number == base
    published = deltas["root"] / "published" / "0-delta.crl"
    assert published.read_bytes() == der
    assert lint_crl(published, "PKIX", "ERROR") == ""


def test_openssl_gnutls_and_pkilint_accept_the_deltas(deltas: dict[str, Any]) -> None:
    ca_dir = deltas["ca"].directory / "ca"
    out = deltas["root"]
    for p, der in deltas["delta_der"].items():
        path = out / f"delta-{p}.der"
        path.write_bytes(der)
        assert lint_crl(path, "PKIX", "ERROR") == ""
        check = openssl_crl_check(path, ca_dir / "issuing.pem")
        assert "verify OK" in check.stdout + check.stderr
        gnutls = subprocess.run(
            [
                "certtool",
                "--verify-crl",
                "--load-ca-certificate",
                str(ca_dir / "issuing.pem"),
                "--infile",
                str(crl_pem(path)),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert gnutls.returncode == 0, gnutls.stdout + gnutls.stderr
    for c in deltas["rebuilt"]:
        if c.kind is Kind.FULL:
            assert lint_crl(c.path, "PKIX", "ERROR") == ""


def test_openssl_uses_base_plus_delta(deltas: dict[str, Any]) -> None:
    """The base (published before the revocations) says nothing; its delta revokes."""
    ca_dir = deltas["ca"].directory / "ca"
    out = deltas["root"]
    for i in (0, 1, 3):
        c = deltas["certs"][i]
        p = partition_of(c.certificate)
        leaf = out / f"leaf{i}.pem"
        leaf.write_text(c.certificate)
        (out / f"b{p}.der").write_bytes(deltas["base_der"][p])
        (out / f"d{p}.der").write_bytes(deltas["delta_der"][p])

        def verify(*crls: Path, leaf: Path = leaf) -> subprocess.CompletedProcess[str]:
            args = [arg for crl in crls for arg in ("-CRLfile", str(crl_pem(crl)))]
            return subprocess.run(
                [
                    "openssl",
                    "verify",
                    "-crl_check",
                    "-use_deltas",
                    "-CAfile",
                    str(ca_dir / "root.pem"),
                    "-untrusted",
                    str(ca_dir / "issuing.pem"),
                    *args,
                    str(leaf),
                ],
                capture_output=True,
                text=True,
                check=False,
            )

        alone = verify(out / f"b{p}.der")
        assert alone.returncode == 0, alone.stdout + alone.stderr  # the base alone: good
        both = verify(out / f"b{p}.der", out / f"d{p}.der")
        if i in (0, 1):
            assert both.returncode != 0
            assert "certificate revoked" in both.stdout + both.stderr
        else:
            assert both.returncode == 0, both.stdout + both.stderr


def test_refusals_change_nothing(deltas: dict[str, Any]) -> None:
    assert deltas["refused"] == {"reason": "reason_not_allowed", "unknown": "not_found"}
    assert deltas["status"] == "good"


def test_expired_entries_leave_only_after_a_crl_past_their_expiry(fresh_ca: DevCA) -> None:
    clock = FixedClock(NOW)
    cfg = msgspec.structs.replace(
        fresh_ca.config,
        crl=msgspec.structs.replace(fresh_ca.config.crl, partitions=1),
    )

    async def job(engine: IssuanceEngine) -> list[list[int]]:
        publisher = crl_publisher(
            cfg, signer=engine.signer, store=engine.store, writer=engine.writer, clock=clock
        )
        short = await engine.issue(
            IssueRequest(
                csr=csr_pem(["short.example.co.jp"]),
                profile="ov",
                organization="pr",
                validity_days=10,
            ),
            actor="t",
        )
        long = await engine.issue(
            IssueRequest(csr=csr_pem(["long.example.co.jp"]), profile="ov", organization="pr"),
            actor="t",
        )
        for c in (short, long):
            await engine.revoke(c.serial, "keyCompromise", actor="t")
        seen = []
        for step in (dt.timedelta(0), dt.timedelta(days=11), dt.timedelta(days=1)):
            clock.advance(step)
            [crl] = await publisher.publish_full(0)
            seen.append(sorted(r.serial_number for r in x509.load_der_x509_crl(crl.read())))
        return [[int(short.serial, 16), int(long.serial, 16)], *seen]

    both, at_issue, after_expiry, next_one = run(
        fresh_ca, clock, job, config=cfg, **setup("pr", NOW)
    )
    assert at_issue == sorted(both)
    assert after_expiry == sorted(both)  # expired, but must appear once after expiry
    assert next_one == [both[1]]


def test_updater_publishes_what_is_due(fresh_ca: DevCA) -> None:
    clock = FixedClock(NOW)
    cfg = msgspec.structs.replace(
        fresh_ca.config,
        crl=msgspec.structs.replace(fresh_ca.config.crl, partitions=2),
    )

    async def job(engine: IssuanceEngine) -> list[list[tuple[int, str, int]]]:
        publisher = crl_publisher(
            cfg, signer=engine.signer, store=engine.store, writer=engine.writer, clock=clock
        )
        updater = crl_updater(cfg, publisher)

        async def step(advance: dt.timedelta = dt.timedelta(0)) -> list[tuple[int, str, int]]:
            clock.advance(advance)
            return [(c.partition, c.kind.value, c.number) for c in await updater.update_once()]

        rounds = [await step(), await step()]
        cert = await engine.issue(
            IssueRequest(csr=csr_pem(["u.example.co.jp"]), profile="ov", organization="up"),
            actor="t",
        )
        await engine.revoke(cert.serial, "superseded", actor="t")
        rounds += [await step(dt.timedelta(seconds=30)), await step(dt.timedelta(seconds=31))]
        rounds.append(await step(dt.timedelta(days=1)))
        (publisher.directory / "1.crl").unlink()
        rounds.append(await step())
        rounds.append([(partition_of(cert.certificate), "", 0)])
        assert updater.statistics().failures == 0
        return rounds

    first, idle, early, due, daily, missing, [(home, _, _)] = run(
        fresh_ca, clock, job, config=cfg, **setup("up", NOW)
    )
    assert [(p, k) for p, k, _ in first] == [(0, "full"), (1, "full")]
    assert idle == []
    assert early == []
    assert [(p, k) for p, k, _ in due] == [(home, "full")]
    assert due[0][2] > first[home][2]
    assert [(p, k) for p, k, _ in daily] == [(0, "full"), (1, "full")]
    assert [(p, k) for p, k, _ in missing] == [(1, "full")]
    assert missing[0][2] > daily[1][2]
