"""Each issuer's OCSP responder certificate renewed before it expires, by the leader of
`hanko serve`, with no restart: the same renewal as `hanko ca renew-responder`
(core/ca/responder_cert.py) signed through the running signer pool instead of an HSM
session of its own; the store's envelope then reaches the refresher and every
responder, which adopt it within a second."""

from __future__ import annotations

import logging
from pathlib import Path

import trio
from cryptography import x509
from cryptography.exceptions import InvalidSignature

from core.base.clock import Clock
from core.base.errors import HankoError, SignerError
from core.ca.responder_cert import adopt_renewal, plan_renewal
from core.config import Config, load_config
from core.store import GroupCommitWriter
from signer.api import BatchSigner, Priority
from signer.splice import assemble, signature_algorithm_der

log = logging.getLogger("hanko.ocsp")

CHECK_EVERY = 3600.0  # seconds between two looks: renewal is due weeks ahead


async def renew_due(
    cfg: Config, *, signer: BatchSigner, writer: GroupCommitWriter, clock: Clock
) -> list[str]:
    """Renew every responder certificate with less than `[ocsp] responder_renew_before`
    left; the names of the issuers whose was renewed."""
    before = cfg.ocsp.responder_renew_before.seconds
    renewed: list[str] = []
    for issuer in cfg.issuers():
        path = cfg.path(issuer.config.ocsp_responder_cert)
        current = x509.load_pem_x509_certificate(path.read_bytes())
        if (current.not_valid_after_utc - clock.now()).total_seconds() >= before:
            continue
        planned = plan_renewal(cfg, clock=clock, issuer=issuer.name)
        tbs = planned.tbs()
        [signature] = await signer.sign_many(
            [(issuer.config.key_label, planned.key_type.default_algorithm, tbs)],
            priority=Priority.BULK,
        )
        if isinstance(signature, SignerError):
            raise signature
        alg_der, _ = signature_algorithm_der(planned.key_type)
        cert = x509.load_der_x509_certificate(assemble(tbs, alg_der, signature))
        cert.verify_directly_issued_by(planned.issuing)  # never store a bad signature
        _, op = adopt_renewal(planned, cert, actor="hanko-serve")
        await writer.submit(op)
        log.info(
            "renewed the OCSP responder certificate of %s: valid until %s",
            issuer.name,
            cert.not_valid_after_utc.isoformat(),
            extra={"event": "ocsp.responder_renewed", "issuer": issuer.name},
        )
        renewed.append(issuer.name)
    return renewed


async def keep_renewed(
    config_path: Path,
    *,
    signer: BatchSigner,
    writer: GroupCommitWriter,
    clock: Clock,
    every: float = CHECK_EVERY,
) -> None:
    """Look every `every` seconds, with the configuration as the file has it then (an
    issuer added since the start is renewed too)."""
    while True:
        try:
            await renew_due(load_config(config_path), signer=signer, writer=writer, clock=clock)
        except (HankoError, OSError, ValueError, InvalidSignature) as exc:
            # Trouble here is weeks from mattering: say it, look again later.
            log.warning("responder certificate renewal: %s", exc)
        await trio.sleep(every)
