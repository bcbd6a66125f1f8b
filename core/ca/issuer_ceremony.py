"""`hanko ca issuer create`: a new issuing CA in one ceremony, as `hanko init` makes the
first: its key and its OCSP responder's key generated inside the HSM (never imported),
its certificate signed by the root key in the same HSM, its responder certificate by
its own key, both linted before the files are written. The issuer is added inactive
(no profiles): `hanko ca issuer activate` puts it to work.

The state changes of the others (activate, retire, revoke) are in issuer_states.py.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from core.base.clock import Clock, epoch_us, to_epoch
from core.base.errors import HankoError, HsmUnavailable
from core.base.files import write_atomically
from core.ca import certs as ca_certs
from core.ca import lint
from core.ca.hsm import check_key, hsm_session, signing_key
from core.ca.responder_cert import throwaway_key
from core.config import Config
from core.config.issuers import IssuerConfig
from core.store.configured import open_store
from signer.algorithms import KeyType, hash_for
from signer.token import TokenSession


class IssuerRefused(HankoError):
    code = "issuer_refused"


@dataclass(frozen=True)
class CreatedIssuer:
    config: IssuerConfig
    certificate: x509.Certificate
    responder: x509.Certificate


def _org(root: x509.Certificate) -> str:
    found = root.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    return str(found[0].value) if found else "hanko"


class _Plan:
    """Where a new issuer's files and keys go, checked free before anything is made."""

    def __init__(self, cfg: Config, name: str) -> None:
        if name in {r.name for r in cfg.issuers()}:
            raise IssuerRefused(f"an issuer named {name!r} exists already")
        self.name = name
        self.dir = cfg.path("ca") / "issuers"
        self.cert = self.dir / f"{name}.pem"
        self.responder = self.dir / f"{name}-ocsp.pem"
        for path in (self.cert, self.responder):
            if path.exists():
                raise IssuerRefused(f"{path} exists already: hanko never overwrites a CA file")
        self.label, self.ocsp_label = f"hanko-issuing-{name}", f"hanko-ocsp-{name}"
        self.root = x509.load_pem_x509_certificate(cfg.path(cfg.ca.root_cert).read_bytes())
        self.org = _org(self.root)

    @property
    def common_name(self) -> str:
        return f"{self.org} TLS Issuing CA {self.name.upper()}"

    def responder_for(
        self,
        issuing: x509.Certificate,
        issuer_key: ca_certs.PrivateKey,
        public_key: ca_certs.PublicKey,
        key_type: KeyType,
        now: dt.datetime,
    ) -> x509.Certificate:
        responder = ca_certs.build_ocsp_responder(
            org=self.org,
            common_name=f"{self.org} OCSP Responder {self.name.upper()}",
            public_key=public_key,
            issuer=issuing,
            issuer_key=issuer_key,
            key_type=key_type,
            now=now,
        )
        findings = lint.lint_findings(
            responder.public_bytes(serialization.Encoding.DER), "ocsp_responder"
        )
        if findings:
            raise IssuerRefused("the responder certificate failed linting: " + "; ".join(findings))
        return responder

    def free_labels(self, session: TokenSession) -> None:
        for label in (self.label, self.ocsp_label):
            try:
                session.public_key_der(label)
            except HsmUnavailable:
                continue
            raise IssuerRefused(f"the token holds a key labelled {label!r} already")

    def write(
        self, cfg: Config, issuing: x509.Certificate, responder: x509.Certificate, key_type: KeyType
    ) -> IssuerConfig:
        self.dir.mkdir(parents=True, exist_ok=True)
        pem = serialization.Encoding.PEM
        write_atomically(self.cert, [issuing.public_bytes(pem)])
        write_atomically(self.responder, [responder.public_bytes(pem)])
        return IssuerConfig(
            name=self.name,
            cert=_relative(cfg, self.cert),
            key_label=self.label,
            key_type=key_type.value,
            profiles=[],
            ocsp_responder_cert=_relative(cfg, self.responder),
            ocsp_responder_key_label=self.ocsp_label,
        )


def _preflight(plan: _Plan, key_type: KeyType, now: dt.datetime) -> None:
    """The responder certificate linted with throwaway keys of the same type before a key
    is made in the HSM: a failure then leaves the token as it was."""
    issuer_key = throwaway_key(key_type)
    issuing = ca_certs.build_issuing_ca(
        org=plan.org,
        common_name=plan.common_name,
        public_key=issuer_key.public_key(),
        root=plan.root,
        root_key=throwaway_key(ca_certs.key_type_of(plan.root)),
        key_type=ca_certs.key_type_of(plan.root),
        base_url="http://preflight.invalid",
        now=now,
    )
    plan.responder_for(issuing, issuer_key, throwaway_key(key_type).public_key(), key_type, now)


def create_issuer(cfg: Config, *, name: str, key_type: KeyType, clock: Clock) -> CreatedIssuer:
    """Keys made in the HSM, the certificate signed by the root key on the same token."""
    plan = _Plan(cfg, name)
    now = clock.now()
    _preflight(plan, key_type, now)
    with hsm_session(cfg) as session:
        check_key(session, cfg.ca.root_key_label, plan.root, "ca.root_key_label", "ca.root_cert")
        plan.free_labels(session)
        root_key = signing_key(session, cfg.ca.root_key_label)
        session.generate_key(plan.label, key_type)
        session.generate_key(plan.ocsp_label, key_type)
        issuer_key = signing_key(session, plan.label)
        issuing = ca_certs.build_issuing_ca(
            org=plan.org,
            common_name=plan.common_name,
            public_key=issuer_key.public_key(),
            root=plan.root,
            root_key=root_key,
            key_type=ca_certs.key_type_of(plan.root),
            base_url=cfg.ca.base_url.rstrip("/"),
            now=now,
        )
        ocsp_key = signing_key(session, plan.ocsp_label).public_key()
        responder = plan.responder_for(issuing, issuer_key, ocsp_key, key_type, now)
    created = plan.write(cfg, issuing, responder, key_type)
    detail = {"serial": f"{issuing.serial_number:x}", "key_type": key_type.value}
    audit(cfg, now, "ca.issuer_created", name, detail)
    return CreatedIssuer(created, issuing, responder)


def request_issuer(
    cfg: Config, *, name: str, key_type: KeyType, clock: Clock, out: Path
) -> x509.CertificateSigningRequest:
    """For a root kept offline: the keys made in the HSM and a CSR for the issuing key,
    signed by it, written to `out`; `import_issuer` takes the certificate back."""
    plan = _Plan(cfg, name)
    if out.exists():
        raise IssuerRefused(f"{out} exists already")
    now = clock.now()
    _preflight(plan, key_type, now)
    with hsm_session(cfg) as session:
        plan.free_labels(session)
        session.generate_key(plan.label, key_type)
        session.generate_key(plan.ocsp_label, key_type)
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(ca_certs.ca_subject(plan.org, plan.common_name))
            .sign(signing_key(session, plan.label), hash_for(key_type))
        )
    write_atomically(out, [csr.public_bytes(serialization.Encoding.PEM)])
    audit(cfg, now, "ca.issuer_requested", name, {"key_type": key_type.value})
    return csr


def import_issuer(cfg: Config, *, name: str, cert: Path, clock: Clock) -> CreatedIssuer:
    """The certificate an offline root signed for `request_issuer`'s CSR: checked to be
    the root's, a CA for TLS servers, and of the key the HSM holds under the name."""
    plan = _Plan(cfg, name)
    try:
        issuing = x509.load_pem_x509_certificate(cert.read_bytes())
    except (OSError, ValueError):
        raise IssuerRefused(f"--cert: {cert} is not a readable PEM certificate") from None
    try:
        issuing.verify_directly_issued_by(plan.root)
    except (ValueError, TypeError, InvalidSignature):
        raise IssuerRefused("--cert: not signed by this CA's root (ca.root_cert)") from None
    try:
        constraints = issuing.extensions.get_extension_for_class(x509.BasicConstraints).value
        usage = issuing.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        raise IssuerRefused("--cert: has no basicConstraints or keyUsage: not a CA") from None
    if not constraints.ca or not usage.key_cert_sign:
        raise IssuerRefused("--cert: not a CA certificate that may sign certificates")
    key_type = ca_certs.key_type_of(issuing)
    now = clock.now()
    with hsm_session(cfg) as session:
        check_key(session, plan.label, issuing, f"the HSM key {plan.label}", "--cert")
        ocsp_key = signing_key(session, plan.ocsp_label).public_key()
        responder = plan.responder_for(
            issuing, signing_key(session, plan.label), ocsp_key, key_type, now
        )
    created = plan.write(cfg, issuing, responder, key_type)
    detail = {"serial": f"{issuing.serial_number:x}", "key_type": key_type.value}
    audit(cfg, now, "ca.issuer_imported", name, detail)
    return CreatedIssuer(created, issuing, responder)


def _relative(cfg: Config, path: Path) -> str:
    try:
        return str(path.relative_to(Path(cfg.base_dir)))
    except ValueError:
        return str(path)


def audit(cfg: Config, now: dt.datetime, action: str, subject: str, detail: dict[str, str]) -> None:
    store = open_store(cfg)
    try:
        store.write(
            lambda txn: txn.audit(
                at_us=epoch_us(to_epoch(now)),
                actor="cli",
                action=action,
                subject=subject,
                detail=detail,
            )
        )
    finally:
        store.close()
