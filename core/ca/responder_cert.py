"""`hanko ca renew-responder`: a new certificate for the delegated OCSP responder's key.

The responder certificate carries ocsp-nocheck, so it is short-lived (90 days) and must
be renewed while the CA runs. The key stays in the HSM and only its certificate
changes, so every response already signed verifies under the new certificate as under
the old: renewal replaces the envelope the store keeps for that key (the certificate
the responders put around each stored response) and nothing is re-signed.

Issuance in two steps, as for subscriber certificates: every field is fixed, the
certificate is signed with a throwaway key and linted (pkilint, BR OCSP responder
profile), then signed for real by the issuing CA key in the HSM. Then, in this order:
the old PEM is kept beside the new one, the new one replaces it (whole and durable),
and the store takes its envelope in one commit with an audit entry. A running
`hanko serve` adopts it from the store within a second (ocsp.refresher); responders
drop their cached answers at their next tick (ocsp.status.server).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from core.base.clock import Clock, epoch_us, to_epoch
from core.base.errors import HankoError, PolicyError
from core.base.files import write_atomically
from core.ca import certs as ca_certs
from core.ca import lint
from core.ca.hsm import check_key, hsm_session, signing_key
from core.config import Config
from core.config.issuers import IssuerConfig
from core.store import OcspEnvelope, WriteTxn
from core.store.configured import open_store
from ocsp.response_codec import ResponseEnvelope
from signer.algorithms import KeyType, hash_for
from signer.splice import signature_algorithm_der

_SPKI = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


class RenewalRefused(HankoError):
    code = "renewal_refused"


@dataclass(frozen=True)
class Renewal:
    certificate: x509.Certificate
    previous: x509.Certificate
    kept_as: Path  # where the previous certificate's PEM now is


def _load(path: Path, what: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except OSError as exc:
        raise RenewalRefused(f"cannot read the {what} {path}: {exc.strerror}") from None
    except ValueError:
        raise RenewalRefused(f"{path} is not a PEM certificate ({what})") from None


def throwaway_key(key_type: KeyType) -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
    if not key_type.is_ec:  # the signature's length aside, what pkilint sees is the same
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    curve = ec.SECP384R1() if key_type is KeyType.ECDSA_P384 else ec.SECP256R1()
    return ec.generate_private_key(curve)


@dataclass(frozen=True)
class Planned:
    """A renewal with every field fixed and linted, waiting for the issuer's signature."""

    chosen: IssuerConfig
    path: Path
    issuing: x509.Certificate
    current: x509.Certificate
    builder: x509.CertificateBuilder
    key_type: KeyType
    now: dt.datetime

    def tbs(self) -> bytes:
        """The TBSCertificate the issuer's key signs (of a throwaway-key twin)."""
        twin = self.builder.sign(throwaway_key(self.key_type), hash_for(self.key_type))
        return twin.tbs_certificate_bytes


def plan_renewal(cfg: Config, *, clock: Clock, issuer: str | None = None) -> Planned:
    """The renewal of the responder certificate of the issuer named (default: the
    first), checked and linted."""
    try:
        chosen = cfg.issuer(issuer).config if issuer else cfg.issuers()[0].config
    except KeyError:
        raise RenewalRefused(f"no issuer named {issuer!r} in [[ca.issuers]]") from None
    path = cfg.path(chosen.ocsp_responder_cert)
    issuing = _load(cfg.path(chosen.cert), "issuing CA certificate")
    current = _load(path, "OCSP responder certificate")
    key_type = KeyType(chosen.key_type)
    now = clock.now()
    ahead = (current.not_valid_before_utc - now).total_seconds()
    if ahead > 2:
        raise RenewalRefused(
            "the current responder certificate is not valid before "
            f"{current.not_valid_before_utc.isoformat()}: is this machine's clock right?"
        )
    if now.replace(microsecond=0) <= current.not_valid_before_utc:
        # Of two certificates with one notBefore the store keeps the first ("newer" is
        # by notBefore, which has whole seconds): start in the next second.
        time.sleep(max(ahead, 0) + 1 - now.microsecond / 1e6)
        now = clock.now()
        if now.replace(microsecond=0) <= current.not_valid_before_utc:
            raise RenewalRefused("the responder certificate was renewed less than a second ago")
    not_after = min(now + ca_certs.OCSP_RESPONDER_VALIDITY, issuing.not_valid_after_utc)
    if not_after <= current.not_valid_after_utc:
        raise RenewalRefused(
            f"the issuing CA certificate ends at {issuing.not_valid_after_utc.isoformat()}: "
            "a renewed responder certificate would not outlive the current one "
            f"(valid until {current.not_valid_after_utc.isoformat()})"
        )
    builder = ca_certs.ocsp_responder_builder(
        subject=current.subject,
        public_key=ca_certs.ca_public_key(current),
        issuer=issuing,
        not_before=now,
        not_after=not_after,
        serial=x509.random_serial_number(),
    )
    digest = hash_for(key_type)
    findings = lint.lint_findings(
        builder.sign(throwaway_key(key_type), digest).public_bytes(serialization.Encoding.DER),
        "ocsp_responder",
    )
    if findings:
        raise PolicyError(
            "lint_failed",
            "the renewed responder certificate failed linting: " + "; ".join(findings),
        )
    return Planned(chosen, path, issuing, current, builder, key_type, now)


def adopt_renewal(
    planned: Planned, renewed: x509.Certificate, *, actor: str
) -> tuple[Path, Callable[[WriteTxn], None]]:
    """Write the renewed certificate (the old one kept beside it); the store op that
    records its envelope, which running refreshers and responders then adopt."""
    path, current = planned.path, planned.current
    kept_as = path.with_name(f"{path.stem}-{current.serial_number:x}{path.suffix}")
    pem = serialization.Encoding.PEM
    if not kept_as.exists():
        write_atomically(kept_as, [current.public_bytes(pem)])
    write_atomically(path, [renewed.public_bytes(pem)])

    alg_der, _ = signature_algorithm_der(planned.key_type)
    env = ResponseEnvelope.for_responder(renewed, alg_der)
    envelope = OcspEnvelope(
        key_hash=env.key_hash, encoded=env.encoded, since=to_epoch(renewed.not_valid_before_utc)
    )

    def op(txn: WriteTxn) -> None:
        txn.put_ocsp_envelope(envelope)
        txn.audit(
            at_us=epoch_us(to_epoch(planned.now)),
            actor=actor,
            action="ocsp.responder_renewed",
            subject=f"{renewed.serial_number:x}",
            detail={
                "issuer": planned.chosen.name,
                "previous": f"{current.serial_number:x}",
                "not_after": renewed.not_valid_after_utc.isoformat(),
            },
        )

    return kept_as, op


def renew_responder(cfg: Config, *, clock: Clock, issuer: str | None = None) -> Renewal:
    """Renew the responder certificate of the issuer named (default: the first),
    signed in an HSM session of this process (`hanko ca renew-responder`)."""
    planned = plan_renewal(cfg, clock=clock, issuer=issuer)
    renewed = _sign_in_hsm(cfg, planned.chosen, planned.builder, planned.issuing, planned.current)
    kept_as, op = adopt_renewal(planned, renewed, actor="cli")
    store = open_store(cfg)
    try:
        store.write(op)
    finally:
        store.close()
    return Renewal(renewed, planned.current, kept_as)


def _sign_in_hsm(
    cfg: Config,
    chosen: IssuerConfig,
    builder: x509.CertificateBuilder,
    issuing: x509.Certificate,
    responder: x509.Certificate,
) -> x509.Certificate:
    """`builder` signed by the issuing CA key in the HSM, after checking that the token
    holds the keys the two certificates name."""
    with hsm_session(cfg) as session:
        where = f"ca.issuers ({chosen.name})"
        check_key(session, chosen.key_label, issuing, f"{where}.key_label", f"{where}.cert")
        check_key(
            session,
            chosen.ocsp_responder_key_label,
            responder,
            f"{where}.ocsp_responder_key_label",
            f"{where}.ocsp_responder_cert",
        )
        key = signing_key(session, chosen.key_label)
        return builder.sign(key, hash_for(KeyType(chosen.key_type)))
