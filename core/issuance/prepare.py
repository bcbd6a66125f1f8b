"""Prepare, the first step of issuance: the policy's decision on one store snapshot,
the licence asked (not yet charged), the TBSCertificate, and the lint of the
certificate as it will be but for its signature (Boulder's issuance cycle: prepare
and lint, then sign, then commit). Nothing is signed or written here.

With Certificate Transparency on for the profile, what is prepared (and linted) is the
precertificate: the same TBS with the critical poison appended; `log_tbs`, the TBS
without it, is what the logs sign and what the final certificate is built on once the
SCTs are in."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Collection

import msgspec
from cryptography import x509

from core.base.clock import to_epoch
from core.base.errors import PolicyError
from core.ca import lint as lint_mod
from core.config import IssuanceConfig
from core.ct.precert import POISON, with_extension
from core.issuance import policy
from core.issuance.facts import facts_for
from core.issuance.idempotency import IdempotencyIds
from core.issuance.intake import CheckedCsr
from core.issuance.messages import IssueRequest
from core.issuance.tbs import TbsEncoder
from core.licenses import book
from core.store import CertRecord, CertStatus, ReadTxn
from core.store.keys import serial_bytes
from signer.splice import assemble


class Prepared(msgspec.Struct, frozen=True, kw_only=True):
    request: IssueRequest
    tbs: bytes  # what is signed first: the certificate, or with CT its precertificate
    record: CertRecord
    ids: IdempotencyIds | None
    decision: policy.Decision
    log_tbs: bytes = b""  # with CT: the TBS without poison (the final one's, less SCTs)
    linted: bool = False  # the final certificate is linted too when this one was

    @property
    def ct(self) -> bool:
        return bool(self.log_tbs)


class Preparer:
    def __init__(
        self,
        *,
        config: IssuanceConfig,
        tbs: TbsEncoder,
        issuer_key_id: bytes,
        signature_algorithm: bytes,
        placeholder_signature: bytes,
        partitions: int,
        blocked_keys: Collection[bytes] = (),
        licensing: book.Settings | None = None,
        rng: random.Random | None = None,
        ct_logs: bool = False,
    ) -> None:
        self._ct_logs = ct_logs  # [ct] lists logs: profiles without `ct = false` use them
        self._config = config
        self._tbs = tbs
        self._issuer_key_id = issuer_key_id
        self._alg_der = signature_algorithm
        self._placeholder_sig = placeholder_signature
        self._partitions = partitions
        self._blocked = frozenset(blocked_keys)
        self._licensing = licensing
        self._rng = rng or random.Random()  # noqa: S311 - lint sampling only
        self.linted = 0  # certificates pkilint passed before signing

    def prepare(
        self,
        read: ReadTxn,
        req: IssueRequest,
        csr: CheckedCsr | PolicyError,
        ids: IdempotencyIds | None,
        now: dt.datetime,
    ) -> Prepared:
        decision = policy.decide(
            req,
            csr,
            facts_for(read, req, csr),
            config=self._config,
            blocked=self._blocked,
            now=now,
        )
        assert isinstance(csr, CheckedCsr)  # noqa: S101 - decide() raised the refusal
        serial = x509.random_serial_number()
        license_id = ""
        if self._licensing is not None:
            operation, license_id = book.precheck_issue(
                read,
                requested=req.license,
                org=decision.org,
                profile=req.profile,
                allowed_kinds=decision.profile.license_kinds,
                names=decision.names,
                operation=decision.operation,
                previous=decision.previous,
                serial=f"{serial:x}",
                not_before=to_epoch(decision.not_before),
                not_after=to_epoch(decision.not_after),
                settings=self._licensing,
            )
            decision = msgspec.structs.replace(decision, operation=operation)
        partition = serial % self._partitions
        prof = decision.profile
        tbs = self._tbs.tbs(
            org=decision.org,
            level=prof.level,
            names=decision.names,
            common_name=decision.common_name,
            spki=csr.spki,
            serial=serial,
            partition=partition,
            not_before=decision.not_before,
            not_after=decision.not_after,
            delta_crl=prof.delta_crl,
        )
        ct = self._ct_logs and prof.ct is not False
        signed_first = with_extension(tbs, POISON) if ct else tbs
        mode = self._config.lint
        linted = mode == "all" or (
            mode == "sample" and self._rng.random() < self._config.lint_sample_rate
        )
        if linted:
            # What is linted is what is signed but for its placeholder signature.
            kind = f"{prof.level}_precertificate" if ct else prof.level
            draft = assemble(signed_first, self._alg_der, self._placeholder_sig)
            lint_mod.require_clean(draft, kind)
            self.linted += 1
        record = CertRecord(
            serial=serial_bytes(serial),
            issuer=self._issuer_key_id,
            status=CertStatus.GOOD,
            not_before=to_epoch(decision.not_before),
            not_after=to_epoch(decision.not_after),
            names=decision.names,
            organization=decision.org.id,
            profile=req.profile,
            partition=partition,
            der=b"",
            first_issued=decision.first_issued,
            reissues=decision.reissues,
            account_id=decision.org.account,
            license=license_id,
            precertificate_only=ct,
        )
        return Prepared(
            request=req,
            tbs=signed_first,
            record=record,
            ids=ids,
            decision=decision,
            log_tbs=tbs if ct else b"",
            linted=linted,
        )

    def lint_final(self, prepared: Prepared, tbs: bytes) -> None:
        """The final certificate of a precertificate, linted when its precertificate was."""
        if prepared.linted:
            level = prepared.decision.profile.level
            lint_mod.require_clean(assemble(tbs, self._alg_der, self._placeholder_sig), level)
            self.linted += 1
