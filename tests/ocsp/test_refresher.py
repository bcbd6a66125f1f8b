"""Pre-signing with the real parts (SoftHSM signer pool, LMDB, group-commit writer) and
an injected clock: responses at issuance, at revocation and at reissue, re-signing at
the refresh point, expiry, and a refresh that loses the race to a revocation."""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple

import msgspec
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp

from core.base.clock import FixedClock, to_epoch
from core.cmd.wiring import ocsp_refresher
from core.cmd.wiring_issuers import presigners
from core.issuance.engine import IssuanceEngine
from core.issuance.messages import IssueRequest
from core.store import CertStatus, WriteTxn, serial_bytes
from ocsp.codec import CertIdHash
from ocsp.refresher import RETRY_AFTER, OcspRefresher
from ocsp.response_codec import Envelopes
from tests.conftest import DevCA
from tests.core.issuance.test_engine import csr_pem, run, setup

UTC = dt.UTC
DAY = dt.timedelta(days=1)


class Stored(NamedTuple):
    refresh_at: int
    der: dict[int, bytes]  # CertIdHash value -> OCSPResponse


def responses(engine: IssuanceEngine, serial: int) -> Stored:
    """The serial's stored responses, as OCSPResponse DER: put in their envelope from
    the store, as the responder and `hanko ocsp export` do."""
    with engine.store.read() as txn:
        rec = txn.get_ocsp(serial_bytes(serial))
        assert rec is not None
        envelopes = Envelopes(txn.get_ocsp_envelope)
        out = {h: envelopes.response(signed) for h, signed in rec.signed.items()}
    assert all(der is not None for der in out.values())
    return Stored(rec.refresh_at, {h: der for h, der in out.items() if der is not None})


def check(
    rec: Stored, ca: DevCA, serial: int, status: ocsp.OCSPCertStatus, at: dt.datetime
) -> list[ocsp.OCSPResponse]:
    """Both CertID hashes present, signed by the responder, saying `status` as of `at`."""
    responder = x509.load_pem_x509_certificate(
        (ca.directory / "ca" / "ocsp-responder.pem").read_bytes()
    )
    out = []
    assert sorted(rec.der) == [int(CertIdHash.SHA1), int(CertIdHash.SHA256)]
    for der in rec.der.values():
        resp = ocsp.load_der_ocsp_response(der)
        key = responder.public_key()
        assert isinstance(key, ec.EllipticCurvePublicKey)
        key.verify(resp.signature, resp.tbs_response_bytes, ec.ECDSA(hashes.SHA256()))
        assert resp.serial_number == serial
        assert resp.certificate_status is status
        assert resp.this_update_utc == at
        assert resp.next_update_utc == at + 4 * DAY  # the default validity
        out.append(resp)
    assert rec.refresh_at == to_epoch(at + 2 * DAY)  # half-life
    return out


def test_presign_refresh_revoke_reissue_expire(ca: DevCA) -> None:
    start = dt.datetime.now(UTC).replace(microsecond=0)
    clock = FixedClock(start)

    async def job(engine: IssuanceEngine) -> None:
        cfg = ca.config
        refresher = ocsp_refresher(
            cfg, signer=engine.signer, store=engine.store, writer=engine.writer, clock=clock
        )
        issued = [
            await engine.issue(
                IssueRequest(csr=csr_pem([f"h{i}.example.co.jp"]), profile="ov", organization="o"),
                actor="t",
            )
            for i in range(3)
        ]
        serials = [int(r.serial, 16) for r in issued]
        for s in serials:  # a "good" response in the same commit as the certificate
            check(responses(engine, s), ca, s, ocsp.OCSPCertStatus.GOOD, start)
        assert await refresher.refresh_once() == 0  # nothing due yet

        clock.advance(2 * DAY + dt.timedelta(seconds=1))  # past the refresh point
        t1 = clock.now().replace(microsecond=0)
        assert await refresher.refresh_once() == 3
        for s in serials:
            check(responses(engine, s), ca, s, ocsp.OCSPCertStatus.GOOD, t1)
        assert refresher.statistics().refreshed == 3
        assert await refresher.refresh_once() == 0

        # Revocation stores the revoked response in its own commit.
        stale = engine.store.read()
        with stale:
            before = stale.get_cert(serial_bytes(serials[0]))
            read_at = stale.status_generation()
        await engine.revoke(f"{serials[0]:x}", "keyCompromise", actor="t")
        [resp, _] = check(
            responses(engine, serials[0]), ca, serials[0], ocsp.OCSPCertStatus.REVOKED, t1
        )
        assert resp.revocation_reason is x509.ReasonFlags.key_compromise

        # A refresh that signed "good" before the revocation committed must not win.
        # Both ways: the revocation moved the status generation past the one the stale
        # read saw, and without a generation every status is read again.
        assert before is not None
        await refresher._refresh_batch([before], t1, read_at=read_at)
        assert refresher.statistics().skipped == 1
        await refresher._refresh_batch([before], t1)
        assert refresher.statistics().skipped == 2
        check(responses(engine, serials[0]), ca, serials[0], ocsp.OCSPCertStatus.REVOKED, t1)

        # A reissue revokes the original as superseded, and both responses say so.
        new = await engine.issue(
            IssueRequest(
                csr=csr_pem(["h1.example.co.jp"]),
                profile="ov",
                organization="o",
                reissue_of=f"{serials[1]:x}",
            ),
            actor="t",
        )
        [old_resp, _] = check(
            responses(engine, serials[1]), ca, serials[1], ocsp.OCSPCertStatus.REVOKED, t1
        )
        assert old_resp.revocation_reason is x509.ReasonFlags.superseded
        check(
            responses(engine, int(new.serial, 16)),
            ca,
            int(new.serial, 16),
            ocsp.OCSPCertStatus.GOOD,
            t1,
        )

        # Later refreshes restate "revoked"; past notAfter nothing is re-signed.
        clock.advance(2 * DAY + dt.timedelta(seconds=1))
        t2 = clock.now().replace(microsecond=0)
        assert await refresher.refresh_once() == 4
        check(responses(engine, serials[0]), ca, serials[0], ocsp.OCSPCertStatus.REVOKED, t2)
        clock.set(issued[2].not_after + dt.timedelta(seconds=1))
        last = responses(engine, serials[2])
        handled = await refresher.refresh_once()
        assert handled == 4
        assert refresher.statistics().expired == 4  # all four were issued together
        assert responses(engine, serials[2]) == last
        with engine.store.read() as txn:
            assert txn.count_ocsp_due(to_epoch(clock.now()) + 10 * 86400 * 365) == 0

    run(ca, clock, job, **setup("o", start, level="ov"))


def small_batches(
    ca: DevCA, engine: IssuanceEngine, clock: FixedClock, *, parallel: int
) -> OcspRefresher:
    """A refresher of two serials per batch, so a few certificates make several."""
    return OcspRefresher(
        presigners=presigners(ca.config), signer=engine.signer, store=engine.store,
        writer=engine.writer, clock=clock, batch=2, parallel=parallel,
    )  # fmt: skip


async def issue_ov(engine: IssuanceEngine, prefix: str, n: int) -> list[int]:
    """`n` OV certificates for organization "o"; their serials."""
    issued = await engine.issue_many(
        [
            IssueRequest(
                csr=csr_pem([f"{prefix}{i}.example.co.jp"]), profile="ov", organization="o"
            )
            for i in range(n)
        ],
        actor="t",
    )
    serials = [int(r.serial, 16) for r in issued if not isinstance(r, Exception)]
    assert len(serials) == n
    return serials


def test_one_pass_streams_more_than_its_window(ca: DevCA) -> None:
    """Seven due serials, two per batch, two batches in flight: one pass walks the due
    index with its cursor until everything due is re-signed, each exactly once."""
    start = dt.datetime.now(UTC).replace(microsecond=0)
    clock = FixedClock(start)

    async def job(engine: IssuanceEngine) -> None:
        refresher = small_batches(ca, engine, clock, parallel=2)
        serials = await issue_ov(engine, "s", 7)
        clock.advance(2 * DAY + dt.timedelta(seconds=1))
        t1 = clock.now().replace(microsecond=0)
        assert await refresher.refresh_once() == 7
        for s in serials:
            check(responses(engine, s), ca, s, ocsp.OCSPCertStatus.GOOD, t1)
        stats = refresher.statistics()
        assert (stats.refreshed, stats.skipped, stats.failed, stats.last_round) == (7, 0, 0, 7)
        assert await refresher.refresh_once() == 0

    run(ca, clock, job, **setup("o", start, level="ov"))


def test_a_revoked_record_without_its_time_is_set_aside_not_a_stall(ca: DevCA) -> None:
    """hanko never writes one, but a pass must not stop at it: the other serials of the
    batch and of the pass are re-signed, the broken one keeps its last response and is
    tried again later, counted as failed."""
    start = dt.datetime.now(UTC).replace(microsecond=0)
    clock = FixedClock(start)

    async def job(engine: IssuanceEngine) -> None:
        refresher = small_batches(ca, engine, clock, parallel=1)
        serials = await issue_ov(engine, "b", 5)
        bad = serials[0]
        before = responses(engine, bad)

        def corrupt(txn: WriteTxn) -> None:
            rec = txn.get_cert(serial_bytes(bad))
            assert rec is not None
            txn.put_cert(msgspec.structs.replace(rec, status=CertStatus.REVOKED))

        engine.store.write(corrupt)
        clock.advance(2 * DAY + dt.timedelta(seconds=1))
        t1 = clock.now().replace(microsecond=0)
        assert await refresher.refresh_once() == 5
        for s in serials[1:]:
            check(responses(engine, s), ca, s, ocsp.OCSPCertStatus.GOOD, t1)
        after = responses(engine, bad)
        assert after.der == before.der  # the last response, not a new "good" one
        assert after.refresh_at == to_epoch(t1) + RETRY_AFTER
        stats = refresher.statistics()
        assert (stats.refreshed, stats.failed) == (4, 1)
        assert await refresher.refresh_once() == 0  # nothing else is due now

    run(ca, clock, job, **setup("o", start, level="ov"))
