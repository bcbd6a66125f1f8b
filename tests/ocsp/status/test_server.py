"""The responder's per-process state (ocsp/status/server.py) on a real store, signer and
writer, its ticks driven by hand: when a cached answer follows the store."""

from __future__ import annotations

import base64
import datetime as dt

import msgspec
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509 import ocsp

from core.base.clock import FixedClock
from core.cmd.wiring import ocsp_refresher, responder_settings
from core.issuance.engine import IssuanceEngine
from core.issuance.messages import IssueRequest
from ocsp.status.connection import Request
from ocsp.status.server import ResponderState
from ocsp.status.sources import lmdb_source
from tests.conftest import DevCA
from tests.core.issuance.test_engine import csr_pem, run, setup
from tests.ocsp.test_answers import request_der

UTC = dt.UTC
DAY = dt.timedelta(days=1)


def test_a_status_change_is_served_at_the_next_tick_a_refresh_within_a_second(
    ca: DevCA,
) -> None:
    start = dt.datetime.now(UTC).replace(microsecond=0)
    clock = FixedClock(start)
    cfg = ca.config
    issuer = x509.load_pem_x509_certificate(cfg.path(cfg.issuers()[0].config.cert).read_bytes())

    async def job(engine: IssuanceEngine) -> None:
        refresher = ocsp_refresher(
            cfg, signer=engine.signer, store=engine.store, writer=engine.writer, clock=clock
        )
        issued = await engine.issue(
            IssueRequest(csr=csr_pem(["www.example.co.jp"]), profile="ov", organization="o"),
            actor="t",
        )
        cert = x509.load_pem_x509_certificate(issued.certificate.encode())
        state = ResponderState(
            responder_settings(cfg), lmdb_source(responder_settings(cfg), engine.store)
        )
        target = b"/ocsp/" + base64.b64encode(request_der(cert, issuer, hashes.SHA1()))
        head = Request(b"GET", target, b"", True, None)

        def served() -> ocsp.OCSPResponse:
            wire = state.handle(head)
            assert wire.startswith(b"HTTP/1.1 200 ")
            return ocsp.load_der_ocsp_response(wire.split(b"\r\n\r\n", 1)[1])

        second = int(start.timestamp())  # the responder's wall clock, by hand
        state.tick(0.0, second)
        first = served()
        assert first.certificate_status is ocsp.OCSPCertStatus.GOOD
        assert first.this_update_utc == start

        # Re-signed with the same status: the cached answer stands for the rest of the
        # second (no lookup per request), the new response is served from the next one.
        clock.advance(2 * DAY + dt.timedelta(seconds=1))
        assert await refresher.refresh_once() == 1
        state.tick(0.1, second)
        assert served().this_update_utc == start
        state.tick(1.0, second + 1)
        refreshed = served()
        assert refreshed.certificate_status is ocsp.OCSPCertStatus.GOOD
        assert refreshed.this_update_utc == clock.now().replace(microsecond=0)

        # A revocation moves the store's status generation: served at the next tick,
        # within the same second.
        await engine.revoke(issued.serial, "keyCompromise", actor="t")
        state.tick(1.1, second + 1)
        revoked = served()
        assert revoked.certificate_status is ocsp.OCSPCertStatus.REVOKED
        assert revoked.revocation_reason is x509.ReasonFlags.key_compromise

    run(ca, clock, job, **setup("o", start, level="ov"))


def test_the_answer_cache_keeps_to_its_bound(ca: DevCA) -> None:
    start = dt.datetime.now(UTC).replace(microsecond=0)
    clock = FixedClock(start)
    cfg = ca.config
    issuer = x509.load_pem_x509_certificate(cfg.path(cfg.issuers()[0].config.cert).read_bytes())

    async def job(engine: IssuanceEngine) -> None:
        certs = [
            x509.load_pem_x509_certificate(
                (
                    await engine.issue(
                        IssueRequest(
                            csr=csr_pem([f"c{i}.example.co.jp"]), profile="ov", organization="b"
                        ),
                        actor="t",
                    )
                ).certificate.encode()
            )
            for i in range(3)
        ]
        settings = msgspec.structs.replace(responder_settings(cfg), cache_entries=2)
        state = ResponderState(settings, lmdb_source(settings, engine.store))
        sizes = []
        for cert in [*certs, certs[0]]:
            der = request_der(cert, issuer, hashes.SHA1())
            wire = state.handle(Request(b"POST", b"/ocsp", der, True, None))
            answer = ocsp.load_der_ocsp_response(wire.split(b"\r\n\r\n", 1)[1])
            assert answer.serial_number == cert.serial_number
            assert answer.certificate_status is ocsp.OCSPCertStatus.GOOD
            sizes.append(len(state.cache))
        assert sizes == [1, 2, 1, 2]

    run(ca, clock, job, **setup("b", start, level="ov"))
