"""Responder certificates renewed by `hanko serve` before they expire
(core/cmd/responder_renewal.py): through the real signer pool (SoftHSM), for every
issuer, adopted from the store by the refresher; an injected clock stands in for the
weeks that pass."""

from __future__ import annotations

import datetime as dt

from cryptography import x509

from core.base.clock import FixedClock
from core.cmd.responder_renewal import renew_due
from core.cmd.wiring import ocsp_refresher
from core.issuance.engine import IssuanceEngine
from ocsp.response_codec import ResponseEnvelope
from signer.algorithms import KeyType
from signer.splice import signature_algorithm_der
from tests.conftest import DevCA, hanko, lint
from tests.core.issuance.test_engine import run


def test_every_issuers_responder_is_renewed_when_due(fresh_ca: DevCA) -> None:
    hanko("ca", "issuer", "create", "-c", str(fresh_ca.config_path), "--name", "r1",
          "--key-type", "rsa-2048", check=True)  # fmt: skip
    cfg = fresh_ca.config
    issuers = cfg.issuers()
    before = {
        r.name: x509.load_pem_x509_certificate(cfg.path(r.config.ocsp_responder_cert).read_bytes())
        for r in issuers
    }
    clock = FixedClock(dt.datetime.now(dt.UTC).replace(microsecond=0))

    async def job(engine: IssuanceEngine) -> None:
        refresher = ocsp_refresher(
            cfg, signer=engine.signer, store=engine.store, writer=engine.writer, clock=clock
        )
        kwargs = {"signer": engine.signer, "writer": engine.writer, "clock": clock}
        assert await renew_due(cfg, **kwargs) == []  # 90 days left: not due
        assert refresher.follow_responder() is False
        clock.advance(dt.timedelta(days=61))  # 29 days left, under the 30 asked for
        assert await renew_due(cfg, **kwargs) == ["e1", "r1"]
        assert await renew_due(cfg, **kwargs) == []  # the renewed ones are not due
        assert refresher.follow_responder() is True  # adopted from the store
        assert refresher.statistics().responder_not_after > max(
            int(c.not_valid_after_utc.timestamp()) for c in before.values()
        )
        for r in issuers:
            path = cfg.path(r.config.ocsp_responder_cert)
            renewed = x509.load_pem_x509_certificate(path.read_bytes())
            old = before[r.name]
            assert renewed.serial_number != old.serial_number
            assert renewed.public_key() == old.public_key()  # the key stays in the HSM
            assert renewed.not_valid_before_utc == clock.now()
            issuing = x509.load_pem_x509_certificate(cfg.path(r.config.cert).read_bytes())
            renewed.verify_directly_issued_by(issuing)
            assert lint(path, "OCSP-RESPONDER") == []
            kept = path.with_name(f"{path.stem}-{old.serial_number:x}{path.suffix}")
            assert x509.load_pem_x509_certificate(kept.read_bytes()) == old
            alg_der, _ = signature_algorithm_der(KeyType(r.config.key_type))
            envelope = ResponseEnvelope.for_responder(renewed, alg_der)
            with engine.store.read() as txn:
                assert txn.get_ocsp_envelope(envelope.key_hash) == envelope.encoded

    run(fresh_ca, clock, job)
