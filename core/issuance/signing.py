"""The signing step of issuance: one signer call for a batch of prepared certificates
(or precertificates) and, with pre-signing on, their OCSP responses; and one for the
final certificates that CT completes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

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


# A certificate's responses to sign, each with the pre-signer that made it: its "good"
# ones (its issuer's), and a reissued original's "revoked" ones (that one's issuer's).
_Responses = list[tuple[Presigner, Pending] | None]


class _Key(msgspec.Struct, frozen=True):
    label: str
    alg: SignAlgorithm
    alg_der: bytes


class BatchSigning:
    """Signs with each certificate's own issuer (its record's), and its OCSP
    responses with that issuer's responder key; a reissue's "revoked" response with
    the responder of the issuer of the certificate it replaces."""

    def __init__(
        self,
        *,
        signer: BatchSigner,
        issuers: Sequence[IssuerInfo],
        presigners: Mapping[bytes, Presigner] | None,
    ) -> None:
        self._signer = signer
        self.set_issuers(issuers, presigners)

    def set_issuers(
        self, issuers: Sequence[IssuerInfo], presigners: Mapping[bytes, Presigner] | None
    ) -> None:
        """Sign with these issuers and pre-signers from now on (a reload)."""
        self._keys = {
            i.key_id: _Key(
                i.key_label, i.key_type.default_algorithm, signature_algorithm_der(i.key_type)[0]
            )
            for i in issuers
        }
        self._presigners = presigners

    async def sign(
        self, prepared: list[tuple[int, Prepared]], now: dt.datetime
    ) -> list[tuple[int, Signed | SignerError]]:
        """One signer call for the whole batch: every certificate, and with pre-signing
        on, its "good" OCSP responses and the "revoked" ones of what it reissues (their
        CertIDs do not depend on the certificate's signature, so all go together)."""
        presigners = self._presigners
        items: list[tuple[str, SignAlgorithm, bytes]] = []
        plan: list[tuple[int, Prepared, _Responses]] = []
        for i, p in prepared:
            key = self._keys[p.record.issuer]
            items.append((key.label, key.alg, p.tbs))
            responses: _Responses = [None, None]
            if presigners is not None:
                ps = presigners[p.record.issuer]
                responses[0] = (ps, ps.pending(p.record.serial, now=now))
                previous = p.decision.previous
                if p.decision.replaces is not None and previous is not None:
                    ps = presigners.get(previous.issuer, ps)
                    responses[1] = (
                        ps,
                        ps.pending(
                            p.decision.replaces,
                            now=now,
                            revoked_at=to_epoch(now),
                            reason=RevocationReason.SUPERSEDED,
                        ),
                    )
                for made in responses:
                    if made is not None:
                        items += made[0].sign_items(made[1])
            plan.append((i, p, responses))
        signatures = await self._signer.sign_many(items, priority=Priority.INTERACTIVE)
        out: list[tuple[int, Signed | SignerError]] = []
        pos = 0
        for i, p, responses in plan:
            sig = signatures[pos]
            pos += 1
            records: list[OcspRecord | SignerError | None] = []
            for made in responses:
                if made is None:
                    records.append(None)
                    continue
                ps, pending = made
                n = len(pending.tbs)
                records.append(ps.record(pending, signatures[pos : pos + n]))
                pos += n
            if isinstance(sig, SignerError):
                out.append((i, sig))
            else:
                der = assemble(p.tbs, self._keys[p.record.issuer].alg_der, sig)
                signed = Signed(prepared=p, der=der, ocsp=records[0], ocsp_replaced=records[1])
                out.append((i, signed))
        return out

    async def sign_tbs(self, tbs: list[tuple[bytes, bytes]]) -> list[bytes | SignerError]:
        """Certificates for these (issuer key id, TBSCertificate), in one signer call."""
        keys = [self._keys[issuer] for issuer, _ in tbs]
        signatures = await self._signer.sign_many(
            [(k.label, k.alg, t) for k, (_, t) in zip(keys, tbs, strict=True)],
            priority=Priority.INTERACTIVE,
        )
        return [
            s if isinstance(s, SignerError) else assemble(t, k.alg_der, s)
            for k, (_, t), s in zip(keys, tbs, signatures, strict=True)
        ]
