"""The ACME registration authority: accounts bound by EAB to hanko's accounts,
organizations, profiles and licences; orders whose names are authorized by the
organization's domain validations; finalize through the issuance engine.

Every state change is one durable writer op. An ACME account acts, in the engine and
the audit log, as `acme:<id>` inside its hanko account only.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence

import msgspec
from cryptography import x509

from core.acme import jws, profiles, renewal
from core.acme.eab import hmac_key
from core.acme.messages import Identifier
from core.acme.problems import Problem
from core.acme.states import current, expired, order_status
from core.base.clock import Clock, to_epoch
from core.base.dnsnames import normalize_dns_name
from core.base.errors import (
    CaaForbidden,
    Conflict,
    CtUnavailable,
    HankoError,
    LookupFailed,
    NotFound,
    PolicyError,
    SignerError,
    StoreError,
)
from core.base.reasons import REASON_NAMES, RevocationReason
from core.config import IssuanceConfig
from core.config.schedule import in_force
from core.issuance.engine import IssuanceEngine
from core.issuance.messages import IssueRequest, IssueResult
from core.issuance.policy import EXACT_NAME_METHODS, validation_covers
from core.store import (
    AcmeAccountRecord,
    AcmeAuthzRecord,
    AcmeChallenge,
    AcmeOrderRecord,
    CertStatus,
    EabRecord,
    GroupCommitWriter,
    ReadTxn,
    Store,
    serial_bytes,
)

DAY = 86400
MAX_IDENTIFIERS = 100


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    eab_secret: bytes
    order_lifetime: int = 7 * DAY
    authz_lifetime: int = 7 * DAY


def _new_id() -> str:
    return secrets.token_urlsafe(12)


def _pem_csr(der: bytes) -> str:
    b64 = base64.b64encode(der).decode()
    lines = "\n".join(b64[i : i + 64] for i in range(0, len(b64), 64))
    return f"-----BEGIN CERTIFICATE REQUEST-----\n{lines}\n-----END CERTIFICATE REQUEST-----\n"


def _issuance_problem(exc: HankoError) -> Problem:
    if isinstance(exc, Problem):
        return exc
    if isinstance(exc, CaaForbidden):
        return Problem("caa", exc.message)
    if isinstance(exc, LookupFailed):
        # The order stays ready: CAA is checked again when the client finalizes again.
        return Problem("dns", exc.message, status=503, retry_after=60)
    if isinstance(exc, (SignerError, StoreError, CtUnavailable)):
        # The order stays ready: finalizing again later may succeed.
        return Problem("serverInternal", f"{exc.code}: {exc.message}", status=503)
    if exc.code.startswith(("csr_", "key_", "name_", "too_many", "common_name", "wildcard")):
        return Problem("badCSR", f"{exc.code}: {exc.message}")
    # Licences, domain validation, the organization: what the account may not do.
    return Problem("unauthorized", f"{exc.code}: {exc.message}")


class RegistrationAuthority:
    def __init__(
        self,
        *,
        store: Store,
        writer: GroupCommitWriter,
        engine: IssuanceEngine,
        clock: Clock,
        issuance: IssuanceConfig,
        settings: Settings,
    ) -> None:
        self._store = store
        self._writer = writer
        self._engine = engine
        self._clock = clock
        self._issuance = issuance
        self._settings = settings

    def cert_id(self, serial_hex: str) -> str:
        """The RFC 9773 identifier of one of this CA's certificates (AKI.serial)."""
        with self._store.read() as txn:
            rec = txn.get_cert(bytes.fromhex(serial_hex))
        issuer = rec.issuer if rec is not None else b""
        return renewal.cert_id_of(issuer, int(serial_hex, 16))

    # -- accounts -------------------------------------------------------------------

    def _eab_for(self, txn: ReadTxn, raw: object, url: str, jwk: dict[str, object]) -> EabRecord:
        kid = jws.eab_kid(raw)
        eab = txn.get_eab(kid)
        if eab is None or eab.revoked_at:
            raise Problem("unauthorized", f"unknown or revoked EAB key id {kid!r}")
        _, payload = jws.verify_mac(
            raw, hmac_key(self._settings.eab_secret, eab.kid, eab.salt), url=url
        )
        try:
            bound = msgspec.json.decode(payload)
        except msgspec.DecodeError:
            raise Problem("malformed", "the EAB payload is not a JWK") from None
        if not isinstance(bound, dict) or jws.thumbprint(bound) != jws.thumbprint(jwk):
            raise Problem("unauthorized", "the EAB binds another key than the request's")
        if eab.acme_account:
            raise Problem("unauthorized", f"EAB key id {kid} is bound to an account already")
        return eab

    async def new_account(
        self,
        jwk: dict[str, object],
        *,
        url: str,
        only_existing: bool,
        eab_raw: object | None,
        contact: list[str],
    ) -> tuple[AcmeAccountRecord, bool]:
        """The account of this key, or a new one bound to its EAB credential."""
        thumb = jws.thumbprint(jwk)
        with self._store.read() as txn:
            existing = txn.acme_account_by_key(thumb)
            if existing is not None:
                return existing, False
            if only_existing:
                raise Problem("accountDoesNotExist", "no account has this key")
            if eab_raw is None:
                raise Problem("externalAccountRequired", "newAccount needs externalAccountBinding")
            eab = self._eab_for(txn, eab_raw, url, jwk)
        acct = AcmeAccountRecord(
            id=_new_id(),
            jwk=msgspec.json.encode(jwk),
            thumbprint=thumb,
            eab_kid=eab.kid,
            created_at=to_epoch(self._clock.now()),
            contact=contact,
        )
        at_us = self._clock.now_us()
        try:
            await self._writer.submit(lambda t: t.bind_acme_account(acct, at_us=at_us))
        except HankoError as exc:  # a twin request bound it first
            raise Problem("unauthorized", exc.message) from None
        return acct, True

    def account(self, account_id: str) -> tuple[AcmeAccountRecord, EabRecord]:
        with self._store.read() as txn:
            acct = txn.get_acme_account(account_id)
            eab = txn.get_eab(acct.eab_kid) if acct is not None else None
        if acct is None or eab is None:
            raise Problem("accountDoesNotExist", f"no account {account_id!r}")
        if acct.status != "valid":
            raise Problem("unauthorized", f"account {account_id} is {acct.status}")
        if eab.revoked_at:
            raise Problem("unauthorized", f"the EAB credential of account {account_id} is revoked")
        return acct, eab

    async def update_account(
        self, acct: AcmeAccountRecord, *, contact: list[str] | None, status: str | None
    ) -> AcmeAccountRecord:
        if status is not None and status != "deactivated":
            raise Problem("malformed", "an account's status may only become deactivated")
        new = msgspec.structs.replace(
            acct,
            contact=acct.contact if contact is None else contact,
            status=status or acct.status,
        )
        action = "acme.account_deactivate" if status else "acme.account_update"
        at_us = self._clock.now_us()
        await self._writer.submit(
            lambda t: t.update_acme_account(
                new, old_thumbprint=acct.thumbprint, at_us=at_us, action=action
            )
        )
        return new

    async def change_key(self, acct: AcmeAccountRecord, new_jwk: dict[str, object]) -> None:
        new = msgspec.structs.replace(
            acct, jwk=msgspec.json.encode(new_jwk), thumbprint=jws.thumbprint(new_jwk)
        )
        at_us = self._clock.now_us()
        try:
            await self._writer.submit(
                lambda t: t.update_acme_account(
                    new, old_thumbprint=acct.thumbprint, at_us=at_us, action="acme.key_change"
                )
            )
        except Conflict as exc:
            # RFC 8555 7.3.5: another account has the new key.
            raise Problem("malformed", exc.message, status=409) from None

    # -- orders ---------------------------------------------------------------------

    def _names(self, identifiers: Sequence[Identifier]) -> list[str]:
        if not 1 <= len(identifiers) <= MAX_IDENTIFIERS:
            raise Problem("malformed", f"an order names 1 to {MAX_IDENTIFIERS} identifiers")
        names: list[str] = []
        for ident in identifiers:
            if ident.type != "dns":
                raise Problem("unsupportedIdentifier", f"{ident.type} identifiers are not issued")
            try:
                name = normalize_dns_name(ident.value, allow_wildcard=True)
            except PolicyError as exc:
                raise Problem("rejectedIdentifier", f"{ident.value}: {exc.message}") from None
            if name not in names:
                names.append(name)
        return names

    def _authorize(
        self,
        txn: ReadTxn,
        acct: AcmeAccountRecord,
        eab: EabRecord,
        name: str,
        *,
        now: int,
        profile: str,
    ) -> AcmeAuthzRecord:
        """Valid at once under a domain the organization validated within the reuse period
        in force; else pending with its challenges (wildcards: dns-01 only). A name under
        another organization's validated domain is refused."""
        prof = self._issuance.profiles.get(profile)
        if name.startswith("*.") and (prof is None or not prof.allows_wildcard):
            raise Problem("rejectedIdentifier", f"profile {profile} issues no wildcard: {name}")
        base = name.removeprefix("*.")
        reuse = in_force(self._issuance.validity_schedule, self._clock.now()).dcv_reuse_days * DAY
        own = [d for d in txn.iter_domains(eab.organization) if validation_covers(d, name)]
        fresh = [d for d in own if d.validated_at + reuse >= now]
        authz_id = _new_id()
        expires = now + self._settings.authz_lifetime
        if fresh:
            latest = max(fresh, key=lambda d: d.validated_at)
            kind = "http-01" if latest.method in EXACT_NAME_METHODS else "dns-01"
            done = AcmeChallenge(
                type=kind,
                token=secrets.token_urlsafe(32),
                status="valid",
                validated_at=latest.validated_at,
            )
            return AcmeAuthzRecord(
                id=authz_id,
                acme_account=acct.id,
                name=base,
                wildcard=name != base,
                status="valid",
                expires=min(expires, latest.validated_at + reuse),
                challenges=[done],
            )
        labels = base.split(".")
        for i in range(len(labels) - 1):
            parent = ".".join(labels[i:])
            others = [o for o in txn.orgs_of_domain(parent) if o != eab.organization]
            if others:
                raise Problem(
                    "rejectedIdentifier", f"{name} is under a domain of another organization"
                )
        kinds = ["dns-01"] if name != base else ["http-01", "dns-01"]
        challenges = [AcmeChallenge(type=k, token=secrets.token_urlsafe(32)) for k in kinds]
        return AcmeAuthzRecord(
            id=authz_id,
            acme_account=acct.id,
            name=base,
            wildcard=name != base,
            status="pending",
            expires=expires,
            challenges=challenges,
        )

    async def new_order(
        self,
        acct: AcmeAccountRecord,
        eab: EabRecord,
        identifiers: Sequence[Identifier],
        *,
        replaces: str | None = None,
        profile: str | None = None,
    ) -> tuple[AcmeOrderRecord, list[AcmeAuthzRecord]]:
        """`profile`: the one the client asked for (draft-ietf-acme-profiles); none: the
        credential's default."""
        names = self._names(identifiers)
        now = to_epoch(self._clock.now())
        chosen = profiles.chosen(
            profile, eab, self._issuance.profiles, self._engine.issuers.profiles(now)
        )
        with self._store.read() as txn:
            authz = [self._authorize(txn, acct, eab, n, now=now, profile=chosen) for n in names]
            replaced = self._check_replaces(txn, eab, replaces) if replaces is not None else ""
        order = AcmeOrderRecord(
            id=_new_id(),
            acme_account=acct.id,
            names=names,
            authz=[a.id for a in authz],
            status=order_status(authz),
            expires=min([now + self._settings.order_lifetime, *(a.expires for a in authz)]),
            created_at=now,
            replaces=replaced,
            profile=chosen,
        )
        at_us = self._clock.now_us()
        await self._writer.submit(lambda t: t.put_acme_order(order, authz, at_us=at_us))
        return order, authz

    def profiles_offered(self) -> dict[str, str]:
        """The directory's meta.profiles."""
        active = self._engine.issuers.profiles(to_epoch(self._clock.now()))
        return profiles.offered(self._issuance.profiles, active)

    def _check_replaces(self, txn: ReadTxn, eab: EabRecord, cert_id: str) -> str:
        """The serial (hex) an RFC 9773 `replaces` names: a certificate of this account."""
        rec = renewal.named(txn, cert_id, self._engine.issuers.by_key_id)
        if rec is None or rec.account_id != eab.account:
            raise Problem("malformed", f"replaces names no certificate of this account: {cert_id}")
        return rec.serial.hex()

    def order(
        self, acct: AcmeAccountRecord, order_id: str
    ) -> tuple[AcmeOrderRecord, list[AcmeAuthzRecord]]:
        with self._store.read() as txn:
            order = txn.get_acme_order(order_id)
            if order is None or order.acme_account != acct.id:
                raise Problem("malformed", f"no order {order_id!r} of this account", status=404)
            return current(txn, order, to_epoch(self._clock.now()))

    def orders(self, acct: AcmeAccountRecord) -> list[str]:
        """The account's orders still pending, ready or processing, and valid ones that
        have not expired (RFC 8555 7.1.2.1 lists those), oldest first."""
        now = to_epoch(self._clock.now())
        with self._store.read() as txn:
            found = [txn.get_acme_order(i) for i in txn.acme_orders_of(acct.id)]
            live = [current(txn, o, now)[0] for o in found if o is not None]
        return [o.id for o in live if o.status != "invalid" and o.expires >= now]

    def authorization(self, acct: AcmeAccountRecord, authz_id: str) -> AcmeAuthzRecord:
        with self._store.read() as txn:
            authz = txn.get_acme_authz(authz_id)
        if authz is None or authz.acme_account != acct.id:
            raise Problem("malformed", f"no authorization {authz_id!r} of this account", status=404)
        return expired(authz, to_epoch(self._clock.now()))

    async def deactivate_authorization(
        self, acct: AcmeAccountRecord, authz_id: str
    ) -> AcmeAuthzRecord:
        """RFC 8555 7.5.2: the client gives an authorization up (orders using it fail)."""
        authz = self.authorization(acct, authz_id)
        if authz.status not in ("pending", "valid"):
            raise Problem("malformed", f"authorization {authz_id} is {authz.status}")
        done = msgspec.structs.replace(authz, status="deactivated")
        await self._writer.submit(lambda t: t.put_acme_authz(done))
        return done

    async def finalize(
        self,
        acct: AcmeAccountRecord,
        eab: EabRecord,
        order_id: str,
        csr_b64: str,
        *,
        account_uri: str,
    ) -> AcmeOrderRecord:
        """`account_uri`: the account's URL, which CAA's accounturi (RFC 8657) names."""
        order, authz = self.order(acct, order_id)
        if order.status == "valid":
            return order
        if order_status(authz) != "ready" or order.status not in ("ready", "pending"):
            raise Problem("orderNotReady", f"order {order_id} is {order.status}")
        der = jws.b64decode(csr_b64)
        request = IssueRequest(
            csr=_pem_csr(der),
            profile=order.profile or eab.profile,
            organization=eab.organization,
            license=eab.license or None,
            renewal_of=order.replaces or None,
            # A finalize retried after a crash gets the same certificate, charged once.
            idempotency_key=f"acme-order:{order.id}",
            # The certificate names exactly the order's identifiers (RFC 8555 7.4).
            www_pair=False,
        )
        self._check_csr_names(der, order.names)
        try:
            result = await self._engine.issue(
                request,
                actor=f"acme:{acct.id}",
                accounts=frozenset({eab.account}),
                schedule=False,
                account_uri=account_uri,
            )
        except NotFound as exc:
            raise Problem("unauthorized", f"{exc.code}: {exc.message}") from None
        except HankoError as exc:
            raise _issuance_problem(exc) from None
        assert isinstance(result, IssueResult)  # noqa: S101 - schedule=False: issued or refused
        done = msgspec.structs.replace(order, status="valid", serial=bytes.fromhex(result.serial))
        at_us = self._clock.now_us()
        await self._writer.submit(lambda t: t.put_acme_order(done, [], at_us=at_us))
        return done

    def _check_csr_names(self, der: bytes, names: Sequence[str]) -> None:
        from cryptography import x509

        try:
            csr = x509.load_der_x509_csr(der)
            san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            requested = {
                normalize_dns_name(n, allow_wildcard=True)
                for n in san.get_values_for_type(x509.DNSName)
            }
        except (ValueError, x509.ExtensionNotFound, PolicyError) as exc:
            raise Problem("badCSR", f"the CSR cannot be read or names no DNS SAN: {exc}") from None
        if requested != set(names):
            raise Problem("badCSR", "the CSR's names are not the order's identifiers")

    def renewal_info(self, cert_id: str) -> tuple[int, int]:
        with self._store.read() as txn:
            rec = renewal.named(txn, cert_id, self._engine.issuers.by_key_id)
        if rec is None:
            raise Problem("malformed", "no certificate with this identifier", status=404)
        return renewal.suggested_window(
            rec.not_before,
            rec.not_after,
            revoked=rec.status is CertStatus.REVOKED,
            now=to_epoch(self._clock.now()),
        )

    async def revoke(
        self,
        der: bytes,
        reason: int | None,
        *,
        account: tuple[AcmeAccountRecord, EabRecord] | None,
        key: jws.PublicKey | None,
    ) -> None:
        """revokeCert by the account that may (its hanko account holds the
        certificate) or by the certificate's own key; the profile's reasons apply."""
        try:
            cert = x509.load_der_x509_certificate(der)
        except ValueError:
            raise Problem("malformed", "certificate is not a DER certificate") from None
        serial_hex = f"{cert.serial_number:x}"
        code = 0 if reason is None else reason
        try:
            name = REASON_NAMES[RevocationReason(code)]
        except ValueError:
            raise Problem("badRevocationReason", f"{code} is not a revocation reason") from None
        with self._store.read() as txn:
            rec = txn.get_cert(serial_bytes(cert.serial_number))
        if rec is None or rec.der != der:
            raise Problem("malformed", "no certificate of this CA matches", status=404)
        if account is not None:
            actor = f"acme:{account[0].id}"
            if rec.account_id != account[1].account:
                raise Problem("unauthorized", "this account may not revoke that certificate")
        else:
            actor = "acme:certificate-key"
            if key is None or jws.canonical_jwk(key) != jws.canonical_jwk(cert.public_key()):  # type: ignore[arg-type]
                raise Problem(
                    "unauthorized", "signed with neither the account nor the certificate key"
                )
        if rec.status is CertStatus.REVOKED:
            raise Problem("alreadyRevoked", f"certificate {serial_hex} is revoked already")
        try:
            view = await self._engine.revoke(serial_hex, name, actor=actor)
        except PolicyError as exc:
            raise Problem("badRevocationReason", exc.message) from None
        except HankoError as exc:
            raise _issuance_problem(exc) from None
        if view.already_revoked:
            raise Problem("alreadyRevoked", f"certificate {serial_hex} is revoked already")

    def certificate(self, acct: AcmeAccountRecord, eab: EabRecord, serial_hex: str) -> str:
        """The PEM chain of a certificate this account's orders issued."""
        view = self._engine.view(serial_hex, accounts=frozenset({eab.account}))
        return view.certificate + self._engine.chain_pem(bytes.fromhex(view.issuer_key_id))
