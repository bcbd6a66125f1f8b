"""The issuance engine: prepare (policy, TBS, lint), sign in a batch, commit.

Boulder's cycle. First every request is decided by the policy (core/issuance/policy.py,
pure, over one store snapshot) and turned into its TBSCertificate (core/issuance/tbs.py,
byte-identical to cryptography's builder); with a placeholder signature that is the
certificate pkilint sees when linting is on. Then the to-be-signed bytes of the whole
batch go to the batched signer in one call, and every certificate (its record, the
revocation of the certificate it reissues, its licence charge, its idempotency record,
its audit entries) is committed in one durable writer op, each in its own nested
transaction, before anyone is answered. The engine only orchestrates.

With Certificate Transparency the first signature is the precertificate's. The
precertificates are committed first (their serials answered for by OCSP and CRLs from
then on), then submitted to the logs (transparency.py), and the final certificates,
with their SCTs, are signed in one more signer call and committed as above; one whose
SCTs did not come is answered ct_unavailable, charged nothing, and its serial stays a
revocable precertificate.
"""

from __future__ import annotations

import datetime as dt
import functools
import random
import time
from collections.abc import Callable, Collection, Mapping, Sequence

import msgspec
import trio

from core.base.clock import Clock, epoch_us, from_epoch, to_epoch
from core.base.errors import HankoError, NotFound, PolicyError, SignerError
from core.base.reasons import REASON_NAMES, REASONS, ReasonName, RevocationReason
from core.ca.issuers import IssuerSet
from core.config import IssuanceConfig
from core.ct.submit import Submitter
from core.issuance import caa_screen, events, paying, revocation, transparency
from core.issuance.caa_check import CaaChecker
from core.issuance.facts import check_org_scope
from core.issuance.idempotency import IdempotencyIds, Replayed, conflict, ids_for
from core.issuance.intake import check_each
from core.issuance.intake_pool import IntakePool
from core.issuance.messages import (
    CertificateView,
    IssueRequest,
    IssueResult,
    RevocationView,
    ScheduledRenewalView,
)
from core.issuance.pem import pem_certificate, serial_from_hex
from core.issuance.prepare import Prepared, Preparer, ToSchedule
from core.issuance.scheduling import Scheduling, view
from core.issuance.signing import BatchSigning, Signed
from core.issuance.views import scoped_view
from core.licenses import book
from core.store import (
    CertRecord,
    CertStatus,
    Done,
    Failed,
    GroupCommitWriter,
    IdempotencyRecord,
    OcspRecord,
    ReadTxn,
    Store,
    WriteTxn,
)
from core.store.renewals import ScheduledRenewal
from crl.encoder import revoked_entry
from ocsp.presign import Presigner
from signer.api import BatchSigner, Priority

Observe = Callable[[str, str, float], None]
Outcome = IssueResult | ScheduledRenewalView | HankoError


class EngineStatistics(msgspec.Struct, frozen=True):
    issued: int  # certificates committed
    linted: int  # certificates pkilint passed before signing
    refused: int  # requests refused by policy, licence or idempotency
    batches: int  # issue_many calls that signed something
    revoked: int  # revocations this engine committed (not counting repeats)


class IssuanceEngine:
    def __init__(
        self,
        *,
        config: IssuanceConfig,
        issuers: IssuerSet,
        chains: Mapping[bytes, str],
        signer: BatchSigner,
        store: Store,
        writer: GroupCommitWriter,
        clock: Clock,
        blocked_keys: Collection[bytes] = (),
        rng: random.Random | None = None,
        intake: IntakePool | None = None,
        presigners: Mapping[bytes, Presigner] | None = None,
        licensing: book.Settings | None = None,
        observe: Observe | None = None,
        ct: Submitter | None = None,
        caa: CaaChecker | None = None,
    ) -> None:
        """`chains`: what follows each issuer's certificates in a chain (PEM), by key
        id; `presigners`: each issuer's pre-signer by key id (None: no OCSP)."""
        self._ct = ct
        self._caa = caa  # None: CAA is not checked (a private CA)
        self._observe = observe  # each request's (profile, result, seconds): metrics
        self._config = config
        # None: license enforcement off (a private CA, or the benchmark's baseline).
        self._licensing = licensing
        self._presigners = presigners
        self.issuers = issuers
        self._chains = dict(chains)
        self._signer = signer
        self._store = store
        self._writer = writer
        self._clock = clock
        self._intake = intake
        self._signing = BatchSigning(signer=signer, issuers=issuers.all, presigners=presigners)
        self._preparer = Preparer(
            config=config,
            issuers=issuers,
            ct_logs=ct is not None,
            blocked_keys=blocked_keys,
            licensing=licensing,
            rng=rng,
        )
        self.scheduling = Scheduling(writer=writer, clock=clock, licensing=licensing)
        self._issued = 0
        self._refused = 0
        self._batches = 0
        self._revoked = 0

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

    @property
    def ct(self) -> Submitter | None:
        """The CT logs' submitter, when certificates get SCTs."""
        return self._ct

    @property
    def caa(self) -> CaaChecker | None:
        return self._caa

    def replace_issuers(
        self,
        issuers: IssuerSet,
        chains: Mapping[bytes, str],
        presigners: Mapping[bytes, Presigner] | None,
    ) -> None:
        """Issue from these issuers from the next request on (a reload: one activated,
        retired or added). Requests under way finish with the issuer they were
        prepared for: every issuer stays known, retired ones too."""
        self.issuers = issuers
        self._chains = dict(chains)
        self._presigners = presigners
        self._signing.set_issuers(issuers.all, presigners)
        self._preparer.set_issuers(issuers)

    def chain_pem(self, issuer_key_id: bytes) -> str:
        """What follows a certificate of this issuer in a chain (PEM): its issuing CA."""
        return self._chains.get(issuer_key_id, "")

    def statistics(self) -> EngineStatistics:
        return EngineStatistics(
            issued=self._issued,
            linted=self._preparer.linted,
            refused=self._refused,
            batches=self._batches,
            revoked=self._revoked,
        )

    # -- issuance -------------------------------------------------------------------

    async def issue(
        self,
        request: IssueRequest,
        *,
        actor: str,
        accounts: frozenset[str] | None = None,
        schedule: bool = True,
        account_uri: str | None = None,
    ) -> IssueResult | ScheduledRenewalView:
        """One request; `schedule` False refuses a renewal that would be scheduled
        (ACME: its clients ask renewal information when to renew)."""
        [result] = await self.issue_many(
            [request], actor=actor, accounts=accounts, schedule=schedule, account_uri=account_uri
        )
        if isinstance(result, HankoError):
            raise result
        return result

    async def issue_many(
        self,
        requests: Sequence[IssueRequest],
        *,
        actor: str,
        accounts: frozenset[str] | None = None,
        held: Sequence[ScheduledRenewal | None] = (),
        schedule: bool = True,
        account_uri: str | None = None,
    ) -> list[Outcome]:
        """Issue each request (or schedule it: a renewal asked before its issue
        window). `actor` is the caller (the audit log's actor; idempotency keys are its
        own); `accounts`, when given, the only accounts whose organizations it may
        issue for (others are answered as not found). `held[i]`: the scheduled renewal
        request i issues now. `account_uri`: the ACME account's URL (CAA accounturi)."""
        started = time.monotonic()
        now = self._clock.now().replace(microsecond=0)
        out: list[Outcome | None] = [None] * len(requests)
        prepared: list[tuple[int, Prepared]] = []
        to_schedule: list[tuple[int, ToSchedule]] = []
        # CSR intake (proof of possession, key checks) is most of the per-certificate
        # work: large batches go to the intake processes, small ones are checked here.
        # (A thread instead measured slower: the hop costs every request.)
        items = [(r.csr, self._allowed(r.profile)) for r in requests]
        csrs = await self._intake.check(items) if self._intake is not None else check_each(items)

        def prepare_all() -> None:
            with self._store.read() as txn:
                for i, req in enumerate(requests):
                    try:
                        if accounts is not None:
                            check_org_scope(txn, req.organization, accounts)
                        mine = held[i] if held else None
                        # A scheduled renewal's key was spent when it was scheduled.
                        ids = ids_for(req, actor) if mine is None else None
                        replay = self._replay(txn, ids)
                        if replay is not None:
                            out[i] = replay
                            continue
                        p = self._preparer.prepare(txn, req, csrs[i], ids, now, held=mine)
                        if isinstance(p, ToSchedule):
                            if not schedule:
                                raise p.too_early()
                            to_schedule.append((i, p))
                        else:
                            prepared.append((i, p))
                    except HankoError as exc:
                        out[i] = exc

        if self._store.remote:
            # Its reads wait on the network: in a worker thread, the loop serves on.
            await trio.to_thread.run_sync(prepare_all)
        else:
            prepare_all()
        if prepared and self._caa is not None:
            prepared, refused = await caa_screen.screen(
                self._caa, prepared, account_uri=account_uri
            )
            for i, exc in refused:
                out[i] = exc
        if to_schedule:
            for i, scheduled in await self.scheduling.schedule(
                to_schedule, actor=actor, accounts=accounts
            ):
                out[i] = scheduled
        if prepared:
            self._batches += 1
            notices = {i: p.decision.notice for i, p in prepared if p.decision.notice}
            for i, done in await self._sign_and_commit(prepared, actor=actor, now=now):
                if isinstance(done, IssueResult) and i in notices:
                    done = msgspec.structs.replace(done, notice=notices[i])  # noqa: PLW2901
                out[i] = done
        results = [r if r is not None else HankoError("request was not processed") for r in out]
        self._refused += sum(isinstance(r, PolicyError) for r in results)
        if self._observe is not None:
            took = time.monotonic() - started
            for req, r in zip(requests, results, strict=True):
                what = "scheduled" if isinstance(r, ScheduledRenewalView) else "issued"
                self._observe(req.profile, r.code if isinstance(r, HankoError) else what, took)
        return results

    async def _sign_and_commit(
        self, prepared: list[tuple[int, Prepared]], *, actor: str, now: dt.datetime
    ) -> list[tuple[int, IssueResult | HankoError]]:
        """Sign the batch and commit it; with CT, commit the precertificates, get their
        SCTs, sign and commit the final certificates."""
        done: list[tuple[int, IssueResult | HankoError]] = []
        ready: list[tuple[int, Signed]] = []
        for i, signed in await self._signing.sign(prepared, now):
            if isinstance(signed, SignerError):
                done.append((i, signed))
            else:
                ready.append((i, signed))
        if not ready:
            return done
        promised: list[tuple[int, Signed]] = []
        for i, result in await self._commit_all(ready, actor=actor, now=now):
            if isinstance(result, Signed):
                promised.append((i, result))
            else:
                done.append((i, result))
        if promised:
            done += await self._complete(promised, actor=actor, now=now)
        return done

    async def _complete(
        self, promised: list[tuple[int, Signed]], *, actor: str, now: dt.datetime
    ) -> list[tuple[int, IssueResult | HankoError]]:
        """The committed precertificates' SCTs, final certificates and their commit."""
        ct = self._ct
        assert ct is not None  # noqa: S101 - precertificates are made only with CT on
        done: list[tuple[int, IssueResult | HankoError]] = []
        finals: dict[int, Signed] = {}
        for i, final in await transparency.complete(
            promised, submitter=ct, signing=self._signing, preparer=self._preparer
        ):
            if isinstance(final, HankoError):
                done.append((i, final))
            else:
                finals[i] = final
        if not finals:
            return done
        for i, result in await self._commit_all(list(finals.items()), actor=actor, now=now):
            assert not isinstance(result, Signed)  # noqa: S101 - finals are final
            done.append((i, result))
            if isinstance(result, IssueResult):
                record = finals[i].prepared.record
                ct.submit_final(finals[i].der, record.not_after, record.issuer)
        return done

    def _replay(
        self, txn: ReadTxn, ids: IdempotencyIds | None
    ) -> IssueResult | ScheduledRenewalView | None:
        if ids is None:
            return None
        rec = txn.get_idempotency(ids.key)
        if rec is None:
            return None
        if rec.body_sha256 != ids.body:
            raise conflict()
        if rec.scheduled:
            scheduled = txn.get_renewal(rec.scheduled)
            if scheduled is None:
                raise NotFound("the scheduled renewal of this idempotency key is gone")
            return view(scheduled)
        return self._result(txn.get_cert(rec.serials[0]))

    def _allowed(self, profile: str) -> tuple[str, ...]:
        prof = self._config.profiles.get(profile)
        return tuple(prof.key_types) if prof is not None else ()

    def _commit_one(
        self, txn: WriteTxn, s: Signed, *, actor: str, now: dt.datetime
    ) -> CertRecord | Replayed | Signed:
        """A certificate's commit; with CT first its precertificate's (returned as it is:
        promised), then its final certificate's."""
        p = s.prepared
        decision = p.decision
        at_us = epoch_us(to_epoch(now))
        if p.ids is not None:
            existing = txn.get_idempotency(p.ids.key)
            if existing is not None:  # a concurrent twin committed first
                if existing.body_sha256 != p.ids.body:
                    raise conflict()
                return Replayed(existing.serials)
        if p.ct and not s.precertificate:
            # Nothing charged and nobody's certificate yet; answered for from now on.
            promise = msgspec.structs.replace(p.record, der=s.der, license="")
            txn.insert_precertificate(promise, at_us=at_us, actor=actor)
            revocation.store_ocsp(txn, promise.serial, s.ocsp, now)
            caa_screen.record(txn, p, promise.serial.hex(), at_us=at_us, actor=actor)
            return s
        record = msgspec.structs.replace(
            p.record, der=s.der, precertificate_only=False, precertificate=s.precertificate
        )
        record = paying.pay(txn, p, record, licensing=self._licensing, actor=actor, now=now)
        if s.precertificate:
            txn.complete_precertificate(record, at_us=at_us, actor=actor)
        else:
            txn.insert_cert(record, at_us=at_us, actor=actor)
            revocation.store_ocsp(txn, record.serial, s.ocsp, now)
            caa_screen.record(txn, p, record.serial.hex(), at_us=at_us, actor=actor)
        events.issued(txn, record, at=to_epoch(now))
        replaces = decision.replaces
        if replaces is not None:
            old = txn.get_cert(replaces)
            if old is None or old.status is CertStatus.REVOKED:
                raise PolicyError(
                    "reissue_of_revoked", "the certificate being reissued was revoked meanwhile"
                )
            txn.revoke(
                replaces,
                at=to_epoch(now),
                reason=RevocationReason.SUPERSEDED,
                actor=actor,
                entry_der=revoked_entry(
                    int.from_bytes(replaces, "big"), now, RevocationReason.SUPERSEDED
                ),
            )
            revocation.store_ocsp(txn, replaces, s.ocsp_replaced, now)
            events.revoked(txn, replaces, RevocationReason.SUPERSEDED, at=to_epoch(now))
        if p.ids is not None:
            txn.put_idempotency(
                p.ids.key, IdempotencyRecord(body_sha256=p.ids.body, serials=[record.serial])
            )
        return record

    async def _commit_all(
        self, ready: list[tuple[int, Signed]], *, actor: str, now: dt.datetime
    ) -> list[tuple[int, IssueResult | HankoError | Signed]]:
        """Commit every certificate of a request batch in one writer op, each in its own
        nested transaction: one failure (a twin's idempotency key, a reissue whose
        original was revoked meanwhile) rolls back only that certificate. A committed
        precertificate comes back as it went in."""
        one = functools.partial(self._commit_one, actor=actor, now=now)

        def group(txn: WriteTxn) -> list[Done[CertRecord | Replayed | Signed] | Failed]:
            txn.prefetch_issuance([s.prepared.record.serial for _, s in ready])
            return [txn.attempt(functools.partial(one, s=s)) for _, s in ready]

        try:
            outcomes = await self._writer.submit(group)
        except HankoError as exc:
            return [(i, exc) for i, _ in ready]
        results: list[tuple[int, IssueResult | HankoError | Signed]] = []
        for (i, _), outcome in zip(ready, outcomes, strict=True):
            if isinstance(outcome, Failed):
                if not isinstance(outcome.error, HankoError):
                    raise outcome.error  # a bug: let it surface
                results.append((i, outcome.error))
            elif isinstance(outcome.value, Replayed):
                with self._store.read() as txn:
                    results.append((i, self._result(txn.get_cert(outcome.value.serials[0]))))
            elif isinstance(outcome.value, Signed):
                results.append((i, outcome.value))
            else:
                self._issued += 1
                results.append((i, self._result(outcome.value)))
        return results

    def _result(self, rec: CertRecord | None) -> IssueResult:
        if rec is None:
            raise NotFound("the certificate of this idempotency key is gone")
        return IssueResult(
            serial=rec.serial.hex(),
            certificate=pem_certificate(rec.der),
            chain=self.chain_pem(rec.issuer),
            not_before=from_epoch(rec.not_before),
            not_after=from_epoch(rec.not_after),
            license=rec.license or None,
            charged=rec.charged,
        )

    # -- revocation and status ------------------------------------------------------

    async def revoke(
        self,
        serial_hex: str,
        reason: ReasonName,
        *,
        actor: str,
        accounts: frozenset[str] | None = None,
    ) -> RevocationView:
        serial = serial_from_hex(serial_hex)
        code = REASONS[reason]
        at = self._clock.now().replace(microsecond=0)
        now = to_epoch(at)
        entry = revoked_entry(int.from_bytes(serial, "big"), at, code)
        with self._store.read() as read:
            current = read.get_cert(serial)
        if current is None or (accounts is not None and current.account_id not in accounts):
            raise NotFound(f"no certificate with serial {serial.hex()}")
        revocation.check_reason(self._config.profiles.get(current.profile), current, reason)
        ocsp: OcspRecord | SignerError | None = None
        presigner = self._presigners.get(current.issuer) if self._presigners else None
        # Sign only what may be stored: a revoked certificate keeps its revocation.
        if presigner is not None and current.status is CertStatus.GOOD:
            pending = presigner.pending(serial, now=at, revoked_at=now, reason=code)
            sigs = await self._signer.sign_many(
                presigner.sign_items(pending), priority=Priority.INTERACTIVE
            )
            ocsp = presigner.record(pending, sigs)

        op = revocation.revoke_op(serial, code, at, entry=entry, ocsp=ocsp, actor=actor)
        revoked_at, stored_reason, already = await self._writer.submit(op)
        self._revoked += not already
        return RevocationView(
            serial=serial.hex(),
            revoked_at=from_epoch(revoked_at),
            reason=REASON_NAMES[stored_reason],
            already_revoked=already,
        )

    def view(self, serial_hex: str, *, accounts: frozenset[str] | None = None) -> CertificateView:
        return scoped_view(self._store, serial_from_hex(serial_hex), accounts)
