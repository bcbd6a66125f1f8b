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
from core.base.errors import PolicyError, Unavailable
from core.ca import lint as lint_mod
from core.ca.issuers import IssuerSet
from core.config import IssuanceConfig
from core.ct.precert import POISON, with_extension
from core.dns.caa import Decision as CaaDecision
from core.issuance import policy
from core.issuance.facts import facts_for
from core.issuance.idempotency import IdempotencyIds
from core.issuance.intake import CheckedCsr
from core.issuance.messages import IssueRequest
from core.issuance.tbs import TbsEncoder
from core.licenses import book
from core.licenses.plans import Ask, Plan, plan_issue
from core.store import CertRecord, CertStatus, ReadTxn
from core.store.keys import serial_bytes
from core.store.renewals import ScheduledRenewal
from signer.splice import assemble, signature_algorithm_der


class Prepared(msgspec.Struct, frozen=True, kw_only=True):
    request: IssueRequest
    tbs: bytes  # what is signed first: the certificate, or with CT its precertificate
    record: CertRecord
    ids: IdempotencyIds | None
    decision: policy.Decision
    log_tbs: bytes = b""  # with CT: the TBS without poison (the final one's, less SCTs)
    linted: bool = False  # the final certificate is linted too when this one was
    plan: Plan | None = None  # how it is paid (None: licences not enforced)
    held: ScheduledRenewal | None = None  # the scheduled renewal it issues
    caa: tuple[CaaDecision, ...] = ()  # each name's CAA decision, once checked

    @property
    def ct(self) -> bool:
        return bool(self.log_tbs)


class ToSchedule(msgspec.Struct, frozen=True, kw_only=True):
    """A renewal asked before its issue window: checked now, scheduled, issued later."""

    request: IssueRequest
    decision: policy.Decision
    plan: Plan | None
    ids: IdempotencyIds | None

    def too_early(self) -> PolicyError:
        """The refusal where it cannot wait (ACME)."""
        at = self.decision.issue_at
        return PolicyError(
            "renewal_too_early",
            f"this renewal is issued from {at.isoformat() if at else 'later'}",
        )


class Template(msgspec.Struct, frozen=True):
    """An issuer's encoder and signature algorithm, built once."""

    tbs: TbsEncoder
    alg_der: bytes
    placeholder: bytes


class NoIssuer(Unavailable):
    """No issuing CA is active for the request's profile: the CA's configuration, not
    the client's request (503; the message names only the profile)."""

    code = "no_active_issuer"
    public_message = True


class Preparer:
    def __init__(
        self,
        *,
        config: IssuanceConfig,
        issuers: IssuerSet,
        blocked_keys: Collection[bytes] = (),
        licensing: book.Settings | None = None,
        rng: random.Random | None = None,
        ct_logs: bool = False,
    ) -> None:
        self._ct_logs = ct_logs  # [ct] lists logs: profiles without `ct = false` use them
        self._config = config
        self.set_issuers(issuers)
        self._blocked = frozenset(blocked_keys)
        self._licensing = licensing
        self._rng = rng or random.Random()  # noqa: S311 - lint sampling only
        self.linted = 0  # certificates pkilint passed before signing

    def set_issuers(self, issuers: IssuerSet) -> None:
        """Prepare for these issuers from now on (a reload); templates of issuers
        already known are kept."""
        old = getattr(self, "_templates", {})
        templates: dict[bytes, Template] = {}
        for issuer in issuers.all:
            alg_der, placeholder = signature_algorithm_der(issuer.key_type)
            known = old.get(issuer.key_id)
            templates[issuer.key_id] = (
                known
                if known is not None and known.tbs.issuer == issuer
                else Template(TbsEncoder(issuer, alg_der), alg_der, placeholder)
            )
        self._templates, self.issuers = templates, issuers

    def prepare(
        self,
        read: ReadTxn,
        req: IssueRequest,
        csr: CheckedCsr | PolicyError,
        ids: IdempotencyIds | None,
        now: dt.datetime,
        *,
        held: ScheduledRenewal | None = None,
    ) -> Prepared | ToSchedule:
        """`held`: the scheduled renewal this request issues (its hold pays)."""
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
        plan = self._plan(read, req, decision, held, serial)
        if plan is not None:
            decision = msgspec.structs.replace(decision, operation=plan.operation)
        if decision.issue_at is not None:
            return ToSchedule(request=req, decision=decision, plan=plan, ids=ids)
        license_id = plan.license if plan is not None else ""
        issuer = self.issuers.pick(req.profile, csr.spki, to_epoch(now))
        if issuer is None:
            raise NoIssuer(f"no issuing CA is active for profile {req.profile} now")
        template = self._templates[issuer.key_id]
        partition = serial % issuer.shards
        prof = decision.profile
        tbs = template.tbs.tbs(
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
            ocsp=prof.ocsp_url,
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
            draft = assemble(signed_first, template.alg_der, template.placeholder)
            lint_mod.require_clean(draft, kind)
            self.linted += 1
        record = CertRecord(
            serial=serial_bytes(serial),
            issuer=issuer.key_id,
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
            plan=plan,
            held=held,
        )

    def _plan(
        self,
        read: ReadTxn,
        req: IssueRequest,
        decision: policy.Decision,
        held: ScheduledRenewal | None,
        serial: int,
    ) -> Plan | None:
        """How the certificate is paid, and that it can be (None: licences are off)."""
        if self._licensing is None:
            if req.coupon is not None:
                raise PolicyError("coupon_not_used", "licences are not enforced by this CA")
            return None
        prof = decision.profile
        if held is not None and held.coupons:
            # The coupons the renewal held since it was scheduled pay for it.
            plan = Plan(
                "renewal",
                held.license,
                units=len(held.coupons),
                coupons=tuple(held.coupons),
                lots=tuple(held.lots),
            )
        else:
            plan = plan_issue(
                read,
                requested=req.license,
                org=decision.org,
                names=decision.names,
                operation=decision.operation,
                previous=decision.previous,
                not_before=to_epoch(decision.not_before),
                ask=Ask(coupon=req.coupon, dealer=req.dealer, per_name=prof.charge_per_name),
                asked_names=decision.asked_names,
            )
        book.precheck_issue(
            read,
            plan=plan,
            profile=req.profile,
            allowed_kinds=prof.license_kinds,
            names=decision.names,
            previous=decision.previous,
            serial=f"{serial:x}",
            not_before=to_epoch(decision.not_before),
            not_after=to_epoch(decision.not_after),
            settings=self._licensing,
            held=held,
        )
        return plan

    def lint_final(self, prepared: Prepared, tbs: bytes) -> None:
        """The final certificate of a precertificate, linted when its precertificate was."""
        if prepared.linted:
            level = prepared.decision.profile.level
            t = self._templates[prepared.record.issuer]
            lint_mod.require_clean(assemble(tbs, t.alg_der, t.placeholder), level)
            self.linted += 1
