"""The issuance engine: check, build, lint, sign in a batch, commit.

Two steps, as Boulder does them. First every request is checked against the policy and
turned into its TBSCertificate (core/issuance/tbs.py, byte-identical to cryptography's
builder); with a placeholder signature that is the certificate pkilint sees when linting
is on. Then the to-be-signed bytes of the whole batch go to the batched signer in one
call, and every certificate (its record, the revocation of the certificate it reissues,
its idempotency record, its audit entries) is committed in one durable writer op, each
in its own nested transaction, before anyone is answered.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import random
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import msgspec
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from core.base.clock import Clock, from_epoch, to_epoch
from core.base.dnsnames import check_common_name, covered_by, normalize_dns_name
from core.base.errors import Conflict, HankoError, NotFound, PolicyError, SignerError
from core.base.reasons import REASON_NAMES, REASONS, ReasonName, RevocationReason
from core.ca import lint as lint_mod
from core.ca.issuer import IssuerInfo
from core.config import IssuanceConfig, ProfileConfig
from core.issuance.intake import CheckedCsr
from core.issuance.intake_pool import IntakePool, check_inline
from core.issuance.keys import spki_sha256
from core.issuance.messages import CertificateView, IssueRequest, IssueResult, RevocationView
from core.issuance.tbs import TbsEncoder
from core.issuance.validity import ORG_REUSE_DAYS, check_days, in_force, not_after_for
from core.licenses import book, policy
from core.licenses.policy import Operation
from core.store import (
    BlockedKey,
    CertRecord,
    CertStatus,
    GroupCommitWriter,
    IdempotencyRecord,
    OcspRecord,
    OrgRecord,
    ReadTxn,
    Store,
    WriteTxn,
    serial_bytes,
)
from crl.encoder import revoked_entry
from ocsp.presign import Pending, Presigner
from signer.algorithms import SignAlgorithm
from signer.pool import Priority
from signer.splice import BatchSigner, assemble, signature_algorithm_der

RENEWAL_WINDOW_DAYS = 90
REISSUE_ADD_NAMES_DAYS = 30
_DAY = 86400
_JSON = msgspec.json.Encoder()


@dataclass(frozen=True)
class _IdempotencyIds:
    key: bytes  # what the idempotency record is stored under
    body: bytes  # SHA-256 of the request: a replay must match it


def _idempotency_ids(req: IssueRequest) -> _IdempotencyIds | None:
    if req.idempotency_key is None:
        return None
    return _IdempotencyIds(
        key=hashlib.sha256(b"issue\0" + req.idempotency_key.encode()).digest(),
        body=hashlib.sha256(_JSON.encode(req)).digest(),
    )


def _idempotency_conflict() -> Conflict:
    return Conflict(
        "this idempotency_key was already used with a different request",
        code="idempotency_conflict",
    )


@dataclass(frozen=True)
class _Prepared:
    request: IssueRequest
    tbs: bytes
    record: CertRecord
    spki: bytes
    replaces: bytes | None  # serial revoked as superseded in the same commit
    ids: _IdempotencyIds | None
    operation: Operation = "new"
    previous: CertRecord | None = None  # what a renewal or reissue replaces
    license_kinds: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Signed:
    """A prepared certificate with its signature and its pre-signed OCSP responses."""

    prepared: _Prepared
    der: bytes
    ocsp: OcspRecord | SignerError | None  # the new certificate's "good" responses
    ocsp_replaced: OcspRecord | SignerError | None  # the reissued one's "revoked"


class _Replay(Exception):  # control flow inside _commit; never escapes this module
    def __init__(self, serials: list[bytes]) -> None:
        self.serials = serials


_SERIAL_HEX = re.compile(r"^[0-9a-fA-F]{1,40}$")


def pem_certificate(der: bytes) -> str:
    """PEM straight from DER (RFC 7468): no parse, no re-encode."""
    b64 = base64.b64encode(der).decode()
    body = "\n".join(b64[i : i + 64] for i in range(0, len(b64), 64))
    return f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n"


def _serial_from_hex(text: str) -> bytes:
    """A serial from user input (URL path, CLI): at most 20 octets of hex, positive."""
    value = int(text, 16) if _SERIAL_HEX.match(text) else 0
    if value <= 0 or value.bit_length() > 160:
        raise PolicyError("serial_invalid", f"{text[:60]!r} is not a certificate serial in hex")
    return serial_bytes(value)


def _store_ocsp(
    txn: WriteTxn, serial: bytes, rec: OcspRecord | SignerError | None, now: dt.datetime
) -> None:
    """Store fresh responses; if their signing failed, ask the refresher to retry now
    (the status is committed regardless: the CRL carries it, and the last response
    stays served until its nextUpdate)."""
    if isinstance(rec, OcspRecord):
        txn.put_ocsp(serial, rec)
    elif isinstance(rec, SignerError):
        txn.schedule_ocsp(serial, to_epoch(now))


class IssuanceEngine:
    def __init__(
        self,
        *,
        config: IssuanceConfig,
        issuer: IssuerInfo,
        issuer_key_label: str,
        chain_pem: str,
        signer: BatchSigner,
        store: Store,
        writer: GroupCommitWriter,
        clock: Clock,
        blocked_keys: Collection[bytes] = (),
        rng: random.Random | None = None,
        intake: IntakePool | None = None,
        presigner: Presigner | None = None,
        licensing: book.Settings | None = None,
    ) -> None:
        self._config = config
        # None: license enforcement off (a private CA, or the benchmark's baseline).
        self._licensing = licensing
        self._presigner = presigner
        self._issuer = issuer
        self._label = issuer_key_label
        self._chain = chain_pem
        self._signer = signer
        self._store = store
        self._writer = writer
        self._clock = clock
        self._blocked = frozenset(blocked_keys)
        self._intake = intake
        self._rng = rng or random.Random()  # noqa: S311 - lint sampling only
        self._alg = issuer.key_type.default_algorithm
        self._alg_der, self._placeholder_sig = signature_algorithm_der(issuer.key_type)
        self._tbs = TbsEncoder(issuer, self._alg_der)
        self._schedule = tuple(config.validity_schedule)
        self.issued = 0
        self.linted = 0

    # The collaborators, read-only, for commands that run other jobs next to the engine.
    @property
    def signer(self) -> BatchSigner:
        return self._signer

    @property
    def store(self) -> Store:
        return self._store

    @property
    def writer(self) -> GroupCommitWriter:
        return self._writer

    # -- issuance -------------------------------------------------------------------

    async def issue(self, request: IssueRequest, *, actor: str) -> IssueResult:
        [result] = await self.issue_many([request], actor=actor)
        if isinstance(result, HankoError):
            raise result
        return result

    async def issue_many(
        self, requests: Sequence[IssueRequest], *, actor: str
    ) -> list[IssueResult | HankoError]:
        now = self._clock.now().replace(microsecond=0)
        out: list[IssueResult | HankoError | None] = [None] * len(requests)
        prepared: list[tuple[int, _Prepared]] = []
        # CSR intake (proof of possession, key checks) is most of the per-certificate
        # work: large batches go to the intake processes, small ones are checked here.
        # (A thread instead measured slower: the hop costs every request.)
        items = [(r.csr, self._allowed(r.profile)) for r in requests]
        csrs = await self._intake.check(items) if self._intake is not None else check_inline(items)
        with self._store.read() as txn:
            for i, req in enumerate(requests):
                try:
                    ids = _idempotency_ids(req)
                    replay = self._replay(txn, ids)
                    if replay is not None:
                        out[i] = replay
                        continue
                    prepared.append((i, self._prepare(txn, req, csrs[i], ids, now)))
                except HankoError as exc:
                    out[i] = exc
        if prepared:
            ready = await self._sign(prepared, now)
            for i, signed in ready:
                if isinstance(signed, SignerError):
                    out[i] = signed
            ready_ok = [(i, s) for i, s in ready if isinstance(s, _Signed)]
            if ready_ok:
                for i, result in await self._commit_all(ready_ok, actor=actor, now=now):
                    out[i] = result
        return [r if r is not None else HankoError("request was not processed") for r in out]

    async def _sign(
        self, prepared: list[tuple[int, _Prepared]], now: dt.datetime
    ) -> list[tuple[int, _Signed | SignerError]]:
        """One signer call for the whole batch: every certificate, and with pre-signing
        on, its "good" OCSP responses and the "revoked" ones of what it reissues (their
        CertIDs do not depend on the certificate's signature, so all go together)."""
        ps = self._presigner
        items: list[tuple[str, SignAlgorithm, bytes]] = []
        plan: list[tuple[int, _Prepared, Pending | None, Pending | None]] = []
        for i, p in prepared:
            items.append((self._label, self._alg, p.tbs))
            good = replaced = None
            if ps is not None:
                good = ps.pending(p.record.serial, now=now)
                items += ps.sign_items(good)
                if p.replaces is not None:
                    replaced = ps.pending(
                        p.replaces,
                        now=now,
                        revoked_at=to_epoch(now),
                        reason=RevocationReason.SUPERSEDED,
                    )
                    items += ps.sign_items(replaced)
            plan.append((i, p, good, replaced))
        signatures = await self._signer.sign_many(items, priority=Priority.INTERACTIVE)
        out: list[tuple[int, _Signed | SignerError]] = []
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
                der = assemble(p.tbs, self._alg_der, sig)
                out.append((i, _Signed(p, der, records[0], records[1])))
        return out

    def _replay(self, txn: ReadTxn, ids: _IdempotencyIds | None) -> IssueResult | None:
        if ids is None:
            return None
        rec = txn.get_idempotency(ids.key)
        if rec is None:
            return None
        if rec.body_sha256 != ids.body:
            raise _idempotency_conflict()
        return self._result(txn.get_cert(rec.serials[0]))

    def _profile(self, name: str) -> ProfileConfig:
        prof = self._config.profiles.get(name)
        if prof is None:
            raise PolicyError(
                "profile_unknown",
                f"no profile named {name!r} (known: {', '.join(sorted(self._config.profiles))})",
            )
        return prof

    def _allowed(self, profile: str) -> tuple[str, ...]:
        prof = self._config.profiles.get(profile)
        return tuple(prof.key_types) if prof is not None else ()

    def _prepare(
        self,
        read: ReadTxn,
        req: IssueRequest,
        csr: CheckedCsr | PolicyError,
        ids: _IdempotencyIds | None,
        now: dt.datetime,
    ) -> _Prepared:
        prof = self._profile(req.profile)
        org = read.get_org(req.organization)
        if org is None:
            raise PolicyError("organization_unknown", f"no organization {req.organization!r}")
        if prof.level == "ev" and org.level != "ev":
            raise PolicyError(
                "organization_level_insufficient", f"organization {org.id} is validated for OV only"
            )
        validated_at = org.validated_at
        if org.parent:  # a sub-organization shares its primary organization's validation
            parent = read.get_org(org.parent)
            validated_at = parent.validated_at if parent is not None else 0
        if validated_at + ORG_REUSE_DAYS * _DAY < to_epoch(now):
            raise PolicyError(
                "organization_validation_expired",
                f"organization {org.id}'s validation is older than {ORG_REUSE_DAYS} days",
            )
        if isinstance(csr, PolicyError):  # reported after profile and organization
            raise csr
        spki = csr.spki
        blocked = hashlib.sha256(spki).digest()
        if blocked in self._blocked or read.blocked_key(blocked) is not None:
            raise PolicyError("key_blocked", "this key is blocked (it was reported compromised)")
        names = [normalize_dns_name(n, allow_wildcard=prof.wildcard) for n in csr.names]
        names = list(dict.fromkeys(names))
        if len(names) > prof.max_sans:
            raise PolicyError(
                "too_many_names", f"{len(names)} names exceed this profile's {prof.max_sans}"
            )
        if csr.common_name is not None:
            check_common_name(normalize_dns_name(csr.common_name, allow_wildcard=prof.wildcard))
        common_name = names[0] if prof.include_common_name and len(names[0]) <= 64 else None
        rule = in_force(self._schedule, now)
        domains = list(read.iter_domains(org.id))
        for name in names:
            covering = [d for d in domains if covered_by(name, d.domain)]
            if not covering:
                raise PolicyError(
                    "domain_not_validated", f"{name} is not under a domain validated for {org.id}"
                )
            if max(d.validated_at for d in covering) + rule.dcv_reuse_days * _DAY < to_epoch(now):
                raise PolicyError(
                    "domain_validation_expired",
                    f"the validation of {name}'s domain is older than the"
                    f" {rule.dcv_reuse_days} days allowed on {now.date()}",
                )

        days = req.validity_days or prof.default_validity_days or rule.max_days - 1
        check_days(self._schedule, now, days)
        not_before = now
        not_after = not_after_for(now, days)
        replaces = None
        previous: CertRecord | None = None
        origin = to_epoch(now)
        if req.renewal_of is not None and req.reissue_of is not None:
            raise PolicyError(
                "renewal_and_reissue", "a request is a renewal or a reissue, not both"
            )
        if req.renewal_of is not None:
            old = previous = self._previous(read, req.renewal_of, org.id, "renewal")
            if to_epoch(now) < old.not_after - RENEWAL_WINDOW_DAYS * _DAY:
                raise PolicyError(
                    "renewal_too_early", f"renewal opens {RENEWAL_WINDOW_DAYS} days before expiry"
                )
            carried = max(0, old.not_after - to_epoch(now))
            cap = not_after_for(now, rule.max_days)
            not_after = min(not_after + dt.timedelta(seconds=carried), cap)
        if req.reissue_of is not None:
            old = previous = self._previous(read, req.reissue_of, org.id, "reissue")
            added = set(names) - set(old.names)
            first_issued = old.first_issued or old.not_before
            if added and to_epoch(now) > first_issued + REISSUE_ADD_NAMES_DAYS * _DAY:
                raise PolicyError(
                    "reissue_adds_names_late",
                    f"names can be added by reissue only within {REISSUE_ADD_NAMES_DAYS} days"
                    f" of issuance: {', '.join(sorted(added))}",
                )
            old_cert = x509.load_der_x509_certificate(old.der)
            old_org = old_cert.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)
            if old_org and old_org[0].value != org.organization:
                raise PolicyError(
                    "reissue_org_changed",
                    "the organization name changed: that needs a new certificate, not a reissue",
                )
            # Same expiry, but never past the maximum in force today (the BR win).
            not_after = min(from_epoch(old.not_after), not_after_for(now, rule.max_days))
            replaces = old.serial
            origin = first_issued

        operation: Operation = (
            "reissue" if replaces else "renewal" if req.renewal_of is not None else "new"
        )
        serial = x509.random_serial_number()
        license_id = ""
        if self._licensing is not None:
            operation, license_id = self._check_license(
                read,
                req,
                org=org,
                prof=prof,
                names=names,
                operation=operation,
                previous=previous,
                serial=serial,
                not_before=not_before,
                not_after=not_after,
            )
        partition = serial % self._config.crl_partitions
        tbs = self._tbs.tbs(
            org=org,
            level=prof.level,
            names=names,
            common_name=common_name,
            spki=spki,
            serial=serial,
            partition=partition,
            not_before=not_before,
            not_after=not_after,
            delta_crl=prof.delta_crl,
        )
        mode = self._config.lint
        if mode == "all" or (
            mode == "sample" and self._rng.random() < self._config.lint_sample_rate
        ):
            # The linted certificate is the final one but for its placeholder signature.
            lint_mod.require_clean(assemble(tbs, self._alg_der, self._placeholder_sig), prof.level)
            self.linted += 1
        record = CertRecord(
            serial=serial_bytes(serial),
            issuer=self._issuer.key_id,
            status=CertStatus.GOOD,
            not_before=to_epoch(not_before),
            not_after=to_epoch(not_after),
            names=names,
            account=org.id,
            profile=req.profile,
            partition=partition,
            der=b"",
            first_issued=origin,
            account_id=org.account,
            license=license_id,
        )
        return _Prepared(
            request=req,
            tbs=tbs,
            record=record,
            spki=blocked,
            replaces=replaces,
            ids=ids,
            operation=operation,
            previous=previous,
            license_kinds=tuple(prof.license_kinds),
        )

    def _check_license(
        self,
        read: ReadTxn,
        req: IssueRequest,
        *,
        org: OrgRecord,
        prof: ProfileConfig,
        names: list[str],
        operation: Operation,
        previous: CertRecord | None,
        serial: int,
        not_before: dt.datetime,
        not_after: dt.datetime,
    ) -> tuple[Operation, str]:
        """Which license pays, and whether it can: checked here on a snapshot so that a
        refusal costs no signature, and again in the commit, where it counts."""
        settings = self._licensing
        assert settings is not None  # noqa: S101 - only called with licensing on
        if operation == "reissue" and previous is not None and previous.license:
            lic = read.get_license(previous.license)
            if lic is None:
                raise PolicyError("license_unknown", f"no license {previous.license!r}")
            if req.license is not None and req.license != lic.id:
                raise PolicyError(
                    "license_mismatch",
                    f"a reissue stays on its original's license {lic.id}, not {req.license}",
                )
        else:
            # A certificate from before licensing is reissued as a new one: it pays.
            operation = "new" if operation == "reissue" else operation
            lic = book.license_for(read, org, req.license)
        now = to_epoch(not_before)
        book.issue_outcome(
            read,
            policy.lapse(lic, now).license,
            operation=operation,
            allowed_kinds=prof.license_kinds,
            profile=req.profile,
            names=names,
            not_before=now,
            not_after=to_epoch(not_after),
            serial=f"{serial:x}",
            previous=previous,
            settings=settings,
        )
        return operation, lic.id

    def _previous(self, read: ReadTxn, serial_hex: str, org_id: str, what: str) -> CertRecord:
        old = read.get_cert(_serial_from_hex(serial_hex))
        if old is None:
            raise PolicyError(f"{what}_of_unknown", f"no certificate with serial {serial_hex}")
        if old.account != org_id:
            raise PolicyError(
                f"{what}_of_other_organization",
                f"certificate {serial_hex} belongs to another organization",
            )
        if old.status is CertStatus.REVOKED:
            raise PolicyError(f"{what}_of_revoked", f"certificate {serial_hex} is revoked")
        return old

    async def _commit_all(
        self, ready: list[tuple[int, _Signed]], *, actor: str, now: dt.datetime
    ) -> list[tuple[int, IssueResult | HankoError]]:
        """Commit every certificate of a request batch in one writer op, each in its own
        nested transaction: one failure (a twin's idempotency key, a reissue whose
        original was revoked meanwhile) rolls back only that certificate."""
        at_us = to_epoch(now) * 1_000_000
        records = [(i, s, msgspec.structs.replace(s.prepared.record, der=s.der)) for i, s in ready]

        def one(txn: WriteTxn, s: _Signed, record: CertRecord) -> CertRecord:
            p = s.prepared
            if p.ids is not None:
                existing = txn.get_idempotency(p.ids.key)
                if existing is not None:  # a concurrent twin committed first
                    if existing.body_sha256 != p.ids.body:
                        raise _idempotency_conflict()
                    raise _Replay(existing.serials)
            if self._licensing is not None and record.license:
                record = book.charge_issue(
                    txn,
                    record,
                    operation=p.operation,
                    previous=p.previous,
                    allowed_kinds=p.license_kinds,
                    settings=self._licensing,
                    actor=actor,
                )
            txn.insert_cert(record, at_us=at_us, actor=actor)
            _store_ocsp(txn, record.serial, s.ocsp, now)
            if p.replaces is not None:
                old = txn.get_cert(p.replaces)
                if old is None or old.status is CertStatus.REVOKED:
                    raise PolicyError(
                        "reissue_of_revoked", "the certificate being reissued was revoked meanwhile"
                    )
                txn.revoke(
                    p.replaces,
                    at=to_epoch(now),
                    reason=RevocationReason.SUPERSEDED,
                    actor=actor,
                    entry_der=revoked_entry(
                        int.from_bytes(p.replaces, "big"), now, RevocationReason.SUPERSEDED
                    ),
                )
                _store_ocsp(txn, p.replaces, s.ocsp_replaced, now)
            if p.ids is not None:
                txn.put_idempotency(
                    p.ids.key, IdempotencyRecord(body_sha256=p.ids.body, serials=[record.serial])
                )
            return record

        def group(txn: WriteTxn) -> list[tuple[bool, object]]:
            return [txn.attempt(functools.partial(one, s=s, record=r)) for _, s, r in records]

        try:
            outcomes = await self._writer.submit(group)
        except HankoError as exc:
            return [(i, exc) for i, _, _ in records]
        results: list[tuple[int, IssueResult | HankoError]] = []
        for (i, _, _), (ok, value) in zip(records, outcomes, strict=True):
            if ok:
                self.issued += 1
                results.append((i, self._result(value)))  # type: ignore[arg-type]
            elif isinstance(value, _Replay):
                with self._store.read() as txn:
                    results.append((i, self._result(txn.get_cert(value.serials[0]))))
            elif isinstance(value, HankoError):
                results.append((i, value))
            else:
                raise value  # type: ignore[misc]  # a bug: let it surface
        return results

    def _result(self, rec: CertRecord | None) -> IssueResult:
        if rec is None:
            raise NotFound("the certificate of this idempotency key is gone")
        return IssueResult(
            serial=rec.serial.hex(),
            certificate=pem_certificate(rec.der),
            chain=self._chain,
            not_before=from_epoch(rec.not_before),
            not_after=from_epoch(rec.not_after),
            license=rec.license or None,
            charged=rec.charged,
        )

    # -- revocation and status ------------------------------------------------------

    async def revoke(self, serial_hex: str, reason: ReasonName, *, actor: str) -> RevocationView:
        serial = _serial_from_hex(serial_hex)
        code = REASONS[reason]
        at = self._clock.now().replace(microsecond=0)
        now = to_epoch(at)
        entry = revoked_entry(int.from_bytes(serial, "big"), at, code)
        with self._store.read() as read:
            current = read.get_cert(serial)
        if current is None:
            raise NotFound(f"no certificate with serial {serial.hex()}")
        prof = self._config.profiles.get(current.profile)
        if prof is not None and reason not in prof.revocation_reasons:
            raise PolicyError(
                "reason_not_allowed",
                f"profile {current.profile!r} does not allow revocation for {reason}"
                f" (allowed: {', '.join(prof.revocation_reasons)})",
            )
        ocsp: OcspRecord | SignerError | None = None
        # Sign only what may be stored: a revoked certificate keeps its revocation.
        if self._presigner is not None and current.status is CertStatus.GOOD:
            pending = self._presigner.pending(serial, now=at, revoked_at=now, reason=code)
            sigs = await self._signer.sign_many(
                self._presigner.sign_items(pending), priority=Priority.INTERACTIVE
            )
            ocsp = self._presigner.record(pending, sigs)

        def op(txn: WriteTxn) -> tuple[int, RevocationReason, bool]:
            rev, created = txn.revoke(serial, at=now, reason=code, actor=actor, entry_der=entry)
            if created:
                _store_ocsp(txn, serial, ocsp, at)
                revoked = txn.get_cert(serial)
                if revoked is not None and revoked.license:
                    book.release(txn, revoked, now=now, actor=actor)
            if created and code is RevocationReason.KEY_COMPROMISE:
                cert = txn.get_cert(serial)
                if cert is None:  # revoke() just found it; cannot vanish in this txn
                    raise NotFound(f"no certificate with serial {serial.hex()}")
                spki = spki_sha256(x509.load_der_x509_certificate(cert.der).public_key())
                txn.block_key(
                    BlockedKey(
                        spki_sha256=spki, blocked_at=now, reason="keyCompromise", serial=serial
                    ),
                    at_us=now * 1_000_000,
                    actor=actor,
                )
            return rev.revoked_at, rev.reason, not created

        revoked_at, stored_reason, already = await self._writer.submit(op)
        return RevocationView(
            serial=serial.hex(),
            revoked_at=from_epoch(revoked_at),
            reason=REASON_NAMES[stored_reason],
            already_revoked=already,
        )

    def view(self, serial_hex: str) -> CertificateView:
        with self._store.read() as txn:
            rec = txn.get_cert(_serial_from_hex(serial_hex))
        if rec is None:
            raise NotFound(f"no certificate with serial {serial_hex}")
        cert = x509.load_der_x509_certificate(rec.der)
        return CertificateView(
            serial=rec.serial.hex(),
            status="revoked" if rec.status is CertStatus.REVOKED else "good",
            organization=rec.account,
            profile=rec.profile,
            names=list(rec.names),
            not_before=from_epoch(rec.not_before),
            not_after=from_epoch(rec.not_after),
            certificate=cert.public_bytes(serialization.Encoding.PEM).decode(),
            revoked_at=from_epoch(rec.revoked_at) if rec.revoked_at is not None else None,
            reason=REASON_NAMES[rec.reason] if rec.reason is not None else None,
        )
