"""The issuance engine with the real parts: SoftHSM through the signer pool, LMDB through
the group-commit writer, an injected clock; the results checked by openssl and pkilint."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import idna
import msgspec
import pytest
import trio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from core.base.clock import FixedClock, to_epoch
from core.base.errors import Conflict, HankoError, PolicyError
from core.base.reasons import RevocationReason
from core.cmd.wiring import issuance_engine, signer_pool, store_writer
from core.config import Config
from core.issuance.engine import IssuanceEngine
from core.issuance.messages import IssueRequest, IssueResult
from core.licenses import book
from core.store import (
    AccountRecord,
    CertStatus,
    DomainRecord,
    OrgRecord,
    Store,
    WriteTxn,
    serial_bytes,
)
from core.store.configured import open_store
from tests.conftest import DevCA, lint, openssl_verify
from tests.stores import BACKENDS

# Issuance, revocation, licences and idempotency on both store back ends.
STORE_BACKENDS = BACKENDS

UTC = dt.UTC
DAY = dt.timedelta(days=1)


def org(org_id: str, *, level: str = "ev", validated_at: dt.datetime) -> OrgRecord:
    return OrgRecord(
        id=org_id,
        level=level,
        organization="Hanko Test K.K.",
        country="JP",
        state="Tokyo-to",
        locality="Chiyoda-ku",
        validated_at=to_epoch(validated_at),
        jurisdiction_country="JP" if level == "ev" else None,
        business_category="Private Organization" if level == "ev" else None,
        registration_number="0100-01-999999" if level == "ev" else None,
    )


def run(
    ca: DevCA,
    clock: FixedClock,
    job: Callable[[IssuanceEngine], Awaitable[Any]],
    *,
    orgs: list[OrgRecord] = (),  # type: ignore[assignment]
    domains: list[DomainRecord] = (),  # type: ignore[assignment]
    config: Config | None = None,
) -> Any:
    cfg = config or ca.config
    store = open_store(cfg)
    try:
        for o in orgs:
            o = pay_for(store, o, clock.now())  # noqa: PLW2901
            store.write(lambda t, o=o: t.put_org(o, at_us=0, actor="test"))
        for d in domains:
            store.write(lambda t, d=d: t.put_domain(d, at_us=0, actor="test"))
        out: list[Any] = []

        async def main() -> None:
            pool = signer_pool(cfg, workers=2)
            writer = store_writer(cfg, store)
            async with trio.open_nursery() as nursery:
                await nursery.start(writer.run)
                await nursery.start(pool.run)
                engine = issuance_engine(cfg, signer=pool, store=store, writer=writer, clock=clock)
                out.append(await job(engine))
                nursery.cancel_scope.cancel()

        trio.run(main)
        return out[0]
    finally:
        store.close()


def pay_for(store: Store, o: OrgRecord, at: dt.datetime) -> OrgRecord:
    """Put `o` under an account whose default license is a fresh 5-year pool big enough
    for any test here: these tests are about issuance policy, tests/core/licenses about
    what licenses allow."""
    if o.account:
        return o
    now = to_epoch(at)
    settings = book.Settings()

    def op(t: WriteTxn) -> None:
        if t.get_account(o.id) is None:
            book.create_account(
                t,
                AccountRecord(id=o.id, name=o.organization, created_at=now),
                at_us=0,
                actor="test",
            )
        license_id = f"{o.id}-pool-{t.next_counter('test-licenses')}"
        book.buy(
            t,
            o.id,
            license_id,
            "pooled",
            quantity=1000,
            years=5,
            months=None,
            now=now,
            settings=settings,
            actor="test",
        )
        acct = t.get_account(o.id)
        assert acct is not None
        t.put_account(msgspec.structs.replace(acct, default_license=license_id))

    store.write(op)
    return msgspec.structs.replace(o, account=o.id)


def csr_pem(names: list[str], key: Any = None, cn: bool = True) -> str:
    key = key or ec.generate_private_key(ec.SECP256R1())
    subject = [x509.NameAttribute(NameOID.COMMON_NAME, names[0])] if cn else []
    return (
        x509.CertificateSigningRequestBuilder()
        .subject_name(
            x509.Name([*subject, x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "IT")])
        )
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName(n if n.isascii() else idna.encode(n, uts46=True).decode())
                    for n in names
                ]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
        .decode()
    )


def without_ocsp(ca: DevCA) -> Config:
    """`ca`'s configuration with OCSP off, for a fixed clock past the end of its responder
    certificate (90 days after `hanko init`): no response can be signed then (ocsp.presign
    refuses), and these tests are about something else."""
    cfg = ca.config
    return msgspec.structs.replace(cfg, ocsp=msgspec.structs.replace(cfg.ocsp, enabled=False))


def setup(
    org_id: str,
    now: dt.datetime,
    *,
    level: str = "ev",
    domain: str = "example.co.jp",
    domain_age: dt.timedelta = dt.timedelta(0),
) -> dict[str, Any]:
    return {
        "orgs": [org(org_id, level=level, validated_at=now)],
        "domains": [
            DomainRecord(
                org_id=org_id,
                domain=domain,
                validated_at=to_epoch(now - domain_age),
                method="dns-txt",
            )
        ],
    }


NOW = dt.datetime(2026, 11, 21, 19, 0, tzinfo=UTC)

SUBSCRIBER_KEYS = {
    "rsa-2048": lambda: rsa.generate_private_key(65537, 2048),
    "ecdsa-p256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "ecdsa-p384": lambda: ec.generate_private_key(ec.SECP384R1()),
}


@pytest.mark.parametrize("profile", ["ov", "ev"])
@pytest.mark.parametrize("key_type", sorted(SUBSCRIBER_KEYS))
def test_issued_certificates_verify_and_lint_clean(
    ca: DevCA, tmp_path: Path, profile: str, key_type: str
) -> None:
    clock = FixedClock(dt.datetime.now(UTC))
    org_id = f"org-{profile}-{key_type}"
    names = ["日本語.example.co.jp", "www.example.co.jp", "shop.example.co.jp"]
    request = IssueRequest(
        csr=csr_pem(names, SUBSCRIBER_KEYS[key_type]()), profile=profile, organization=org_id
    )
    result: IssueResult = run(
        ca, clock, lambda e: e.issue(request, actor="test"), **setup(org_id, clock.now())
    )
    path = tmp_path / "leaf.pem"
    path.write_text(result.certificate)
    openssl_verify(ca.directory / "ca", path)
    assert lint(path, f"{profile.upper()}-FINAL-CERTIFICATE") == []
    cert = x509.load_pem_x509_certificate(result.certificate.encode())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [
        "xn--wgv71a119e.example.co.jp",
        "www.example.co.jp",
        "shop.example.co.jp",
    ]
    # The subject comes from the validated organization; the CSR's OU is dropped.
    assert (
        cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Hanko Test K.K."
    )
    assert not cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    policy = cert.extensions.get_extension_for_class(x509.CertificatePolicies).value[0]
    assert policy.policy_identifier.dotted_string == (
        "2.23.140.1.1" if profile == "ev" else "2.23.140.1.2.2"
    )
    assert cert.serial_number.bit_length() >= 64
    assert result.not_after - result.not_before == dt.timedelta(days=199) - dt.timedelta(seconds=1)
    # The CRL partition written into the certificate is the one recorded for it.
    crl_url = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value[0]
    with open_store(ca.config) as store, store.read() as txn:
        rec = txn.get_cert(serial_bytes(cert.serial_number))
    assert rec is not None
    assert crl_url.full_name[0].value.endswith(f"/crl/{rec.partition}.crl")
    assert rec.der == cert.public_bytes(serialization.Encoding.DER)


@pytest.mark.parametrize("ca_fixture", ["rsa_ca", "p384_ca"])
def test_other_issuer_key_types(
    ca_fixture: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    issuer: DevCA = request.getfixturevalue(ca_fixture)
    clock = FixedClock(dt.datetime.now(UTC))
    req = IssueRequest(csr=csr_pem(["www.example.co.jp"]), profile="ov", organization="o1")
    result = run(
        issuer, clock, lambda e: e.issue(req, actor="t"), **setup("o1", clock.now(), level="ov")
    )
    path = tmp_path / "leaf.pem"
    path.write_text(result.certificate)
    openssl_verify(issuer.directory / "ca", path)
    assert lint(path, "OV-FINAL-CERTIFICATE") == []


def refusal(
    ca: DevCA,
    request: IssueRequest,
    *,
    clock: FixedClock | None = None,
    config: Config | None = None,
    **data: Any,
) -> str:
    clock = clock or FixedClock(NOW)

    async def job(engine: IssuanceEngine) -> str:
        [result] = await engine.issue_many([request], actor="t")
        assert isinstance(result, HankoError), "the request should have been refused"
        return result.code

    return str(run(ca, clock, job, config=config, **data))


def test_refusals(ca: DevCA) -> None:
    names = ["www.example.co.jp"]
    base = dict(csr=csr_pem(names), profile="ov", organization="r1")
    data = setup("r1", NOW, level="ov")

    def code(**changes: Any) -> str:
        return refusal(ca, IssueRequest(**{**base, **changes}), **data)

    assert code(organization="nobody") == "organization_unknown"
    assert code(profile="dv") == "profile_unknown"
    assert code(profile="ev") == "organization_level_insufficient"
    assert code(csr=csr_pem(["www.other.co.jp"])) == "domain_not_validated"
    assert code(csr=csr_pem(["www.example.co.jp.evil.com"])) == "domain_not_validated"
    assert code(csr=csr_pem(["*.example.co.jp"]), profile="ev") in (
        "organization_level_insufficient",
        "wildcard_not_allowed",
    )
    assert code(validity_days=201) == "validity_too_long"
    assert code(csr=csr_pem(["intranet.local"])) == "name_not_public"
    assert code(csr="garbage") == "csr_malformed"
    assert code(renewal_of="abcdef") == "renewal_of_unknown"
    assert code(renewal_of="ab", reissue_of="cd") == "renewal_and_reissue"


def test_wildcard_switch_and_san_limit(ca: DevCA) -> None:
    cfg = ca.config
    ev = msgspec.structs.replace(cfg.issuance.profiles["ev"], max_sans=2)
    config = msgspec.structs.replace(
        cfg,
        issuance=msgspec.structs.replace(
            cfg.issuance, profiles={**cfg.issuance.profiles, "ev": ev}
        ),
    )
    data = setup("w1", NOW)
    wildcard = IssueRequest(csr=csr_pem(["*.example.co.jp"]), profile="ev", organization="w1")
    assert refusal(ca, wildcard, config=config, **data) == "wildcard_not_allowed"
    many = IssueRequest(
        csr=csr_pem(["a.example.co.jp", "b.example.co.jp", "c.example.co.jp"]),
        profile="ev",
        organization="w1",
    )
    assert refusal(ca, many, config=config, **data) == "too_many_names"


def test_expired_validations(ca: DevCA) -> None:
    req = IssueRequest(csr=csr_pem(["www.example.co.jp"]), profile="ov", organization="x1")
    # Domain validated 201 days ago: past the 200-day reuse period in force in 2026-11.
    stale_domain = setup("x1", NOW, level="ov", domain_age=201 * DAY)
    assert refusal(ca, req, **stale_domain) == "domain_validation_expired"
    fresh_domain = setup("x1", NOW, level="ov", domain_age=199 * DAY)
    assert isinstance(
        run(ca, FixedClock(NOW), lambda e: e.issue(req, actor="t"), **fresh_domain), IssueResult
    )
    stale_org = {
        "orgs": [org("x2", level="ov", validated_at=NOW - 399 * DAY)],
        "domains": setup("x2", NOW)["domains"],
    }
    assert refusal(ca, msgspec.structs.replace(req, organization="x2"), **stale_org) == (
        "organization_validation_expired"
    )


@pytest.mark.parametrize(
    ("at", "allowed", "refused"),
    [
        (dt.datetime(2026, 3, 14, 23, 59, tzinfo=UTC), 398, 399),
        (dt.datetime(2026, 3, 15, 0, 1, tzinfo=UTC), 200, 201),
        (dt.datetime(2027, 3, 14, 23, 59, tzinfo=UTC), 200, 201),
        (dt.datetime(2027, 3, 15, 0, 1, tzinfo=UTC), 100, 101),
        (dt.datetime(2029, 3, 14, 23, 59, tzinfo=UTC), 100, 101),
        (dt.datetime(2029, 3, 15, 0, 1, tzinfo=UTC), 47, 48),
    ],
)
def test_validity_schedule_around_cut_overs(
    ca: DevCA, at: dt.datetime, allowed: int, refused: int
) -> None:
    org_id = f"v{at:%Y%m%d%H}"
    data = setup(org_id, at)
    clock = FixedClock(at)
    csr = csr_pem(["www.example.co.jp"])

    async def job(engine: IssuanceEngine) -> tuple[Any, Any, Any]:
        return tuple(
            await engine.issue_many(
                [
                    IssueRequest(csr=csr, profile="ov", organization=org_id, validity_days=allowed),
                    IssueRequest(csr=csr, profile="ov", organization=org_id, validity_days=refused),
                    IssueRequest(csr=csr, profile="ov", organization=org_id),
                ],
                actor="t",
            )
        )

    ok, too_long, default = run(ca, clock, job, config=without_ocsp(ca), **data)
    assert isinstance(ok, IssueResult)
    assert ok.not_after - ok.not_before == allowed * DAY - dt.timedelta(seconds=1)
    assert isinstance(too_long, PolicyError)
    assert too_long.code == "validity_too_long"
    assert isinstance(default, IssueResult)
    assert default.not_after - default.not_before == (allowed - 1) * DAY - dt.timedelta(seconds=1)


def test_renewal_carries_remaining_days_over(ca: DevCA) -> None:
    start = dt.datetime(2027, 4, 1, tzinfo=UTC)  # 100-day maximum in force
    clock = FixedClock(start)
    data = setup("ren", start)
    csr = csr_pem(["www.example.co.jp"])

    async def job(engine: IssuanceEngine) -> tuple[IssueResult, ...]:
        first = await engine.issue(
            IssueRequest(csr=csr, profile="ov", organization="ren", validity_days=99), actor="t"
        )
        [early] = await engine.issue_many(
            [IssueRequest(csr=csr, profile="ov", organization="ren", renewal_of=first.serial)],
            actor="t",
        )
        assert isinstance(early, PolicyError)
        assert early.code == "renewal_too_early"
        clock.advance(60 * DAY)  # 39 days left on the first certificate
        short = await engine.issue(
            IssueRequest(
                csr=csr, profile="ov", organization="ren", validity_days=50, renewal_of=first.serial
            ),
            actor="t",
        )
        capped = await engine.issue(
            IssueRequest(csr=csr, profile="ov", organization="ren", renewal_of=first.serial),
            actor="t",
        )
        return first, short, capped

    first, short, capped = run(ca, clock, job, config=without_ocsp(ca), **data)
    remaining = first.not_after - clock.now()
    assert short.not_before == clock.now()
    assert short.not_after == clock.now() + 50 * DAY - dt.timedelta(seconds=1) + remaining
    # 99 + 39 days would exceed the 100-day maximum: capped, not refused.
    assert capped.not_after == clock.now() + 100 * DAY - dt.timedelta(seconds=1)


def test_reissue_keeps_expiry_and_supersedes(ca: DevCA) -> None:
    clock = FixedClock(NOW)
    data = setup("re", NOW)
    csr1 = csr_pem(["www.example.co.jp"])
    csr2 = csr_pem(["www.example.co.jp", "new.example.co.jp"])  # a new key, one more name

    async def job(engine: IssuanceEngine) -> tuple[Any, ...]:
        first = await engine.issue(
            IssueRequest(csr=csr1, profile="ov", organization="re"), actor="t"
        )
        clock.advance(10 * DAY)
        second = await engine.issue(
            IssueRequest(csr=csr2, profile="ov", organization="re", reissue_of=first.serial),
            actor="t",
        )
        old_view = engine.view(first.serial)
        third_csr = csr_pem(["www.example.co.jp", "new.example.co.jp", "late.example.co.jp"])
        clock.advance(25 * DAY)  # 35 days after the original issuance
        [late] = await engine.issue_many(
            [
                IssueRequest(
                    csr=third_csr, profile="ov", organization="re", reissue_of=second.serial
                )
            ],
            actor="t",
        )
        [again] = await engine.issue_many(
            [IssueRequest(csr=csr2, profile="ov", organization="re", reissue_of=first.serial)],
            actor="t",
        )
        return first, second, old_view, late, again

    first, second, old_view, late, again = run(ca, clock, job, **data)
    assert second.not_after == first.not_after
    assert old_view.status == "revoked"
    assert old_view.reason == "superseded"
    assert isinstance(late, PolicyError)
    assert late.code == "name_change_window_closed"
    assert isinstance(again, PolicyError)
    assert again.code == "reissue_of_revoked"


def test_double_revocation_and_key_blocking(ca: DevCA) -> None:
    clock = FixedClock(NOW)
    key = ec.generate_private_key(ec.SECP256R1())
    csr = csr_pem(["www.example.co.jp"], key)

    async def job(engine: IssuanceEngine) -> tuple[Any, ...]:
        cert = await engine.issue(IssueRequest(csr=csr, profile="ov", organization="dr"), actor="t")
        first = await engine.revoke(cert.serial, "keyCompromise", actor="t")
        clock.advance(DAY)
        second = await engine.revoke(cert.serial, "cessationOfOperation", actor="t")
        [blocked] = await engine.issue_many(
            [IssueRequest(csr=csr, profile="ov", organization="dr")], actor="t"
        )
        return first, second, blocked, engine.view(cert.serial)

    first, second, blocked, view = run(ca, clock, job, **setup("dr", NOW))
    assert not first.already_revoked
    assert second.already_revoked
    assert (second.reason, second.revoked_at) == ("keyCompromise", first.revoked_at)
    assert view.status == "revoked"
    assert isinstance(blocked, PolicyError)
    assert blocked.code == "key_blocked"
    with open_store(ca.config) as store:
        assert store.stat()["blocked_keys"] >= 1
        with store.read() as txn:
            rec = txn.get_cert(bytes.fromhex(view.serial))
            assert rec is not None
            assert rec.status is CertStatus.REVOKED
            assert rec.reason is RevocationReason.KEY_COMPROMISE


def test_idempotency(ca: DevCA) -> None:
    clock = FixedClock(NOW)
    csr = csr_pem(["www.example.co.jp"])

    async def job(engine: IssuanceEngine) -> tuple[Any, ...]:
        req = IssueRequest(csr=csr, profile="ov", organization="idem", idempotency_key="order-42")
        a = await engine.issue(req, actor="t")
        b = await engine.issue(req, actor="t")
        [c] = await engine.issue_many([msgspec.structs.replace(req, validity_days=30)], actor="t")
        # two identical requests racing in one batch still make one certificate
        twin = IssueRequest(csr=csr, profile="ov", organization="idem", idempotency_key="order-43")
        d, e = await engine.issue_many([twin, twin], actor="t")
        return a, b, c, d, e

    a, b, c, d, e = run(ca, clock, job, **setup("idem", NOW))
    assert a.serial == b.serial
    assert a.certificate == b.certificate
    assert isinstance(c, Conflict)
    assert c.code == "idempotency_conflict"
    assert isinstance(d, IssueResult)
    assert isinstance(e, IssueResult)
    assert d.serial == e.serial


def test_batch_gives_each_item_its_own_answer(ca: DevCA) -> None:
    clock = FixedClock(NOW)
    good = [
        IssueRequest(csr=csr_pem([f"h{i}.example.co.jp"]), profile="ov", organization="b1")
        for i in range(40)
    ]
    bad = IssueRequest(csr=csr_pem(["h.other.co.jp"]), profile="ov", organization="b1")

    async def job(engine: IssuanceEngine) -> list[Any]:
        return await engine.issue_many([*good[:20], bad, *good[20:]], actor="t")

    results = run(ca, clock, job, **setup("b1", NOW))
    assert [isinstance(r, IssueResult) for r in results] == [True] * 20 + [False] + [True] * 20
    assert results[20].code == "domain_not_validated"
    assert len({r.serial for r in results if isinstance(r, IssueResult)}) == 40


def test_lint_all_runs_pkilint_before_signing(ca: DevCA) -> None:
    cfg = ca.config
    config = msgspec.structs.replace(
        cfg, issuance=msgspec.structs.replace(cfg.issuance, lint="all")
    )
    clock = FixedClock(NOW)
    reqs = [
        IssueRequest(csr=csr_pem([f"l{i}.example.co.jp"]), profile=p, organization="lint")
        for i, p in enumerate(["ov", "ev", "ov"])
    ]

    async def job(engine: IssuanceEngine) -> tuple[list[Any], int]:
        return await engine.issue_many(reqs, actor="t"), engine.statistics().linted

    results, linted = run(ca, clock, job, config=config, **setup("lint", NOW))
    assert all(isinstance(r, IssueResult) for r in results)
    assert linted == 3
