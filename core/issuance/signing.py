"""The signing step of issuance: one signer call for a batch of prepared certificates
(or precertificates) and, with pre-signing on, their OCSP responses; and one for the
final certificates that CT completes."""

from __future__ import annotations

import datetime as dt

import msgspec

from core.base.clock import to_epoch
from core.base.errors import SignerError
from core.base.reasons import RevocationReason
from core.ca.issuer import IssuerInfo
from core.issuance.prepare import Prepared
from core.store import OcspRecord
from ocsp.presign import Pending, Presigner
from signer.algorithms import SignAlgorithm
from signer.api import BatchSigner, Priority
from signer.splice import assemble, signature_algorithm_der


class Signed(msgspec.Struct, frozen=True, kw_only=True):
    """A prepared certificate with its signature and its pre-signed OCSP responses."""

    prepared: Prepared
    der: bytes  # the certificate, or with CT first the precertificate
    ocsp: OcspRecord | SignerError | None  # the new serial's "good" responses
    ocsp_replaced: OcspRecord | SignerError | None  # the reissued one's "revoked"
    precertificate: bytes = b""  # with CT, once `der` is the final certificate


class BatchSigning:
    def __init__(
        self,
        *,
        signer: BatchSigner,
        issuer: IssuerInfo,
        key_label: str,
        presigner: Presigner | None,
    ) -> None:
        self._signer = signer
        self._label = key_label
        self._alg: SignAlgorithm = issuer.key_type.default_algorithm
        self.algorithm_der, self.placeholder = signature_algorithm_der(issuer.key_type)
        self._presigner = presigner

    async def sign(
        self, prepared: list[tuple[int, Prepared]], now: dt.datetime
    ) -> list[tuple[int, Signed | SignerError]]:
        """One signer call for the whole batch: every certificate, and with pre-signing
        on, its "good" OCSP responses and the "revoked" ones of what it reissues (their
        CertIDs do not depend on the certificate's signature, so all go together)."""
        ps = self._presigner
        items: list[tuple[str, SignAlgorithm, bytes]] = []
        plan: list[tuple[int, Prepared, Pending | None, Pending | None]] = []
        for i, p in prepared:
            items.append((self._label, self._alg, p.tbs))
            good = replaced = None
            if ps is not None:
                good = ps.pending(p.record.serial, now=now)
                items += ps.sign_items(good)
                if p.decision.replaces is not None:
                    replaced = ps.pending(
                        p.decision.replaces,
                        now=now,
                        revoked_at=to_epoch(now),
                        reason=RevocationReason.SUPERSEDED,
                    )
                    items += ps.sign_items(replaced)
            plan.append((i, p, good, replaced))
        signatures = await self._signer.sign_many(items, priority=Priority.INTERACTIVE)
        out: list[tuple[int, Signed | SignerError]] = []
        pos = 0
        for i, p, good, replaced in plan:
            sig = signatures[pos]
            pos += 1
            records: list[OcspRecord | SignerError | None] = []
            for pending in (good, replaced):
                if pending is None or ps is None:
                    records.append(None)
                    continue
                n = len(pending.tbs)
                records.append(ps.record(pending, signatures[pos : pos + n]))
                pos += n
            if isinstance(sig, SignerError):
                out.append((i, sig))
            else:
                der = assemble(p.tbs, self.algorithm_der, sig)
                signed = Signed(prepared=p, der=der, ocsp=records[0], ocsp_replaced=records[1])
                out.append((i, signed))
        return out

    async def sign_tbs(self, tbs: list[bytes]) -> list[bytes | SignerError]:
        """Certificates for these TBSCertificates, in one signer call."""
        signatures = await self._signer.sign_many(
            [(self._label, self._alg, t) for t in tbs], priority=Priority.INTERACTIVE
        )
        return [
            s if isinstance(s, SignerError) else assemble(t, self.algorithm_der, s)
            for t, s in zip(tbs, signatures, strict=True)
        ]
