"""One responder connection's asyncio side (ocsp/status/protocol.py) over a real store,
signer and writer, with a transport that records what is written: the fast path
answers the very bytes of a request answered before only while that answer is current,
and never for a read that left a request half received."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509 import ocsp

from core.base.clock import FixedClock
from core.cmd.wiring import responder_settings
from core.issuance.engine import IssuanceEngine
from core.issuance.messages import IssueRequest
from ocsp.status.connection import State
from ocsp.status.protocol import Protocol
from ocsp.status.server import ResponderState
from ocsp.status.sources import lmdb_source
from tests.conftest import DevCA
from tests.core.issuance.test_engine import csr_pem, run, setup
from tests.ocsp.test_answers import request_der


class Transport:
    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written.append(bytes(data))

    def get_extra_info(self, name: str) -> Any:
        return ("127.0.0.1", 40000)

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...


def status_of(wire: bytes) -> ocsp.OCSPCertStatus:
    assert wire.startswith(b"HTTP/1.1 200 "), wire[:80]
    return ocsp.load_der_ocsp_response(wire.split(b"\r\n\r\n", 1)[1]).certificate_status


def test_the_fast_path_answers_only_what_is_current(ca: DevCA) -> None:
    start = dt.datetime.now(dt.UTC).replace(microsecond=0)
    clock = FixedClock(start)
    cfg = ca.config
    issuer = x509.load_pem_x509_certificate(cfg.path(cfg.issuers()[0].config.cert).read_bytes())

    async def job(engine: IssuanceEngine) -> None:
        certs = []
        for name in ("a", "b"):
            issued = await engine.issue(
                IssueRequest(csr=csr_pem([f"{name}.example.co.jp"]), profile="ov",
                             organization="o"), actor="t",
            )  # fmt: skip
            certs.append(
                (issued.serial, x509.load_pem_x509_certificate(issued.certificate.encode()))
            )
        state = ResponderState(
            responder_settings(cfg), lmdb_source(responder_settings(cfg), engine.store)
        )
        second = int(start.timestamp())
        state.tick(0.0, second)
        transport = Transport()
        proto = Protocol(state)
        proto.connection_made(transport)

        def get(cert: x509.Certificate, extra: bytes = b"") -> bytes:
            der = request_der(cert, issuer, hashes.SHA1())
            target = b"/ocsp/" + base64.b64encode(der).replace(b"/", b"%2F")
            return b"GET %s HTTP/1.1\r\nHost: ocsp.test\r\n%s\r\n" % (target, extra)

        def answer(data: bytes) -> bytes:
            transport.written.clear()
            proto.data_received(data)
            return b"".join(transport.written)

        (serial_a, a), (_, b) = certs
        first = answer(get(a))
        assert status_of(first) is ocsp.OCSPCertStatus.GOOD
        assert get(a) in state.answered
        misses = state.misses
        assert answer(get(a)) == first  # the fast path: the same bytes, no lookup
        assert state.misses == misses

        # A revocation moves the generation: the same bytes are looked at again.
        await engine.revoke(serial_a, "keyCompromise", actor="t")
        state.tick(0.1, second)
        assert status_of(answer(get(a))) is ocsp.OCSPCertStatus.REVOKED
        # A new second: the Date moves, the answer is made again.
        state.tick(1.0, second + 1)
        again = answer(get(a))
        assert status_of(again) is ocsp.OCSPCertStatus.REVOKED
        assert again != first

        # A conditional request is never taken for a plain one.
        conditional = get(b, b'If-None-Match: "x"\r\n')
        assert status_of(answer(conditional)) is ocsp.OCSPCertStatus.GOOD
        assert conditional not in state.answered

        # A read holding a whole request and the start of the next: the next is under
        # way (nothing is remembered for those bytes), and completes with its rest.
        whole, nxt = get(b), get(a)
        split = whole + nxt[:20]
        assert status_of(answer(split)) is ocsp.OCSPCertStatus.GOOD
        assert split not in state.answered
        assert proto.conn.state is State.REQUEST
        assert status_of(answer(nxt[20:])) is ocsp.OCSPCertStatus.REVOKED
        assert proto.conn.state is State.IDLE
        assert not transport.closed

    run(ca, clock, job, **setup("o", start, level="ov"))
