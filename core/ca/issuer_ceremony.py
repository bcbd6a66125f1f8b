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
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from core.base.clock import Clock, epoch_us, to_epoch
from core.base.errors import HankoError
from core.base.files import write_atomically
from core.ca import certs as ca_certs
from core.ca import lint
from core.ca.hsm import check_key, hsm_session, signing_key
from core.config import Config
from core.config.issuers import IssuerConfig
from core.store.configured import open_store
from signer.algorithms import KeyType


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


def create_issuer(cfg: Config, *, name: str, key_type: KeyType, clock: Clock) -> CreatedIssuer:
    taken = {r.name for r in cfg.issuers()}
    if name in taken:
        raise IssuerRefused(f"an issuer named {name!r} exists already")
    ca_dir = cfg.path("ca") / "issuers"
    cert_path, responder_path = ca_dir / f"{name}.pem", ca_dir / f"{name}-ocsp.pem"
    for path in (cert_path, responder_path):
        if path.exists():
            raise IssuerRefused(f"{path} exists already: hanko never overwrites a CA file")
    root = x509.load_pem_x509_certificate(cfg.path(cfg.ca.root_cert).read_bytes())
    label, ocsp_label = f"hanko-issuing-{name}", f"hanko-ocsp-{name}"
    org = _org(root)
    now = clock.now()
    with hsm_session(cfg) as session:
        check_key(session, cfg.ca.root_key_label, root, "ca.root_key_label", "ca.root_cert")
        root_key = signing_key(session, cfg.ca.root_key_label)
        session.generate_key(label, key_type)
        session.generate_key(ocsp_label, key_type)
        issuer_key = signing_key(session, label)
        issuing = ca_certs.build_issuing_ca(
            org=org,
            common_name=f"{org} TLS Issuing CA {name.upper()}",
            public_key=issuer_key.public_key(),
            root=root,
            root_key=root_key,
            key_type=ca_certs.key_type_of(root),
            base_url=cfg.ca.base_url.rstrip("/"),
            now=now,
        )
        responder = ca_certs.build_ocsp_responder(
            org=org,
            common_name=f"{org} OCSP Responder {name.upper()}",
            public_key=signing_key(session, ocsp_label).public_key(),
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
    ca_dir.mkdir(parents=True, exist_ok=True)
    pem = serialization.Encoding.PEM
    write_atomically(cert_path, [issuing.public_bytes(pem)])
    write_atomically(responder_path, [responder.public_bytes(pem)])
    created = IssuerConfig(
        name=name,
        cert=_relative(cfg, cert_path),
        key_label=label,
        key_type=key_type.value,
        profiles=[],
        ocsp_responder_cert=_relative(cfg, responder_path),
        ocsp_responder_key_label=ocsp_label,
    )
    audit(
        cfg,
        now,
        "ca.issuer_created",
        name,
        {"serial": f"{issuing.serial_number:x}", "key_type": key_type.value},
    )
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
