"""`hanko ca root-crl`: the root CA's CRL, which the issuing CA's certificate names in
its CRL distribution point. The root key signs nothing else after `hanko init`, so
this is the one command that uses it.

The BR (4.9.7) ask for a new root CRL at least every twelve months and within 24 hours
of revoking a subordinate CA: run this from a timer well inside its validity. Prepare,
then sign: the CRL is built and linted (pkilint, BR ARL) with a throwaway key first,
then signed in the HSM, written whole into the CRL folder as root.crl (the status
listener serves it there), with its number and an audit entry in the store.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from core.base.clock import Clock, epoch_us, to_epoch
from core.base.errors import HankoError, PolicyError
from core.base.files import write_atomically
from core.ca import certs as ca_certs
from core.ca import lint
from core.ca.hsm import check_key, hsm_session, signing_key
from core.ca.responder_cert import throwaway_key
from core.config import Config
from core.store import WriteTxn
from core.store.configured import open_store
from core.store.records import RevokedCa
from core.store.replication import CRL
from signer.algorithms import hash_for

# BR 4.9.7: nextUpdate at most twelve months after thisUpdate for CA certificates.
MAX_VALIDITY = dt.timedelta(days=365)
FILE_NAME = "root.crl"


class RootCrlRefused(HankoError):
    code = "root_crl_refused"


@dataclass(frozen=True)
class RootCrl:
    path: Path
    number: int
    this_update: dt.datetime
    next_update: dt.datetime


def counter_name(root: x509.Certificate) -> str:
    ski = root.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    return f"root-crl:{ski.hex()}"


# The CRLReasons of CA certificates on an ARL (BR 7.2.2), by their CLI names.
CA_REASONS = {
    "keyCompromise": x509.ReasonFlags.key_compromise,
    "cACompromise": x509.ReasonFlags.ca_compromise,
    "affiliationChanged": x509.ReasonFlags.affiliation_changed,
    "superseded": x509.ReasonFlags.superseded,
    "cessationOfOperation": x509.ReasonFlags.cessation_of_operation,
}
_CODES = {
    x509.ReasonFlags.key_compromise: 1,
    x509.ReasonFlags.ca_compromise: 2,
    x509.ReasonFlags.affiliation_changed: 3,
    x509.ReasonFlags.superseded: 4,
    x509.ReasonFlags.cessation_of_operation: 5,
}
REASON_OF_CODE = {code: flag for flag, code in _CODES.items()}


def reason_code(name: str) -> int:
    return _CODES[CA_REASONS[name]]


def build(
    root: x509.Certificate,
    *,
    number: int,
    now: dt.datetime,
    validity: dt.timedelta,
    revoked: Sequence[RevokedCa] = (),
) -> x509.CertificateRevocationListBuilder:
    ski = root.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    this_update = now.replace(microsecond=0)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(root.subject)
        .last_update(this_update)
        .next_update(this_update + validity)
        .add_extension(x509.AuthorityKeyIdentifier(ski, None, None), critical=False)
        .add_extension(x509.CRLNumber(number), critical=False)
    )
    for ca in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(int.from_bytes(ca.serial, "big"))
            .revocation_date(dt.datetime.fromtimestamp(ca.revoked_at, dt.UTC))
            .add_extension(x509.CRLReason(REASON_OF_CODE[ca.reason]), critical=False)
            .build()
        )
    return builder


def publish_root_crl(cfg: Config, *, clock: Clock, validity: dt.timedelta) -> RootCrl:
    if not dt.timedelta(hours=1) <= validity <= MAX_VALIDITY:
        raise RootCrlRefused("--days: the root CRL's validity must be 1 to 365 days (BR 4.9.7)")
    try:
        root = x509.load_pem_x509_certificate(cfg.path(cfg.ca.root_cert).read_bytes())
    except (OSError, ValueError) as exc:
        raise RootCrlRefused(
            f"ca.root_cert: cannot read {cfg.path(cfg.ca.root_cert)}: {exc}"
        ) from None
    key_type = ca_certs.key_type_of(root)
    digest = hash_for(key_type)
    store = open_store(cfg)
    try:
        with store.read() as txn:
            number = txn.counter(counter_name(root)) + 1
            revoked = txn.revoked_cas()
        now = clock.now()
        builder = build(root, number=number, now=now, validity=validity, revoked=revoked)
        findings = lint.crl_findings(
            builder.sign(throwaway_key(key_type), digest).public_bytes(serialization.Encoding.DER),
            "ARL",
        )
        if findings:
            raise PolicyError("lint_failed", "the root CRL failed linting: " + "; ".join(findings))
        with hsm_session(cfg) as session:
            check_key(session, cfg.ca.root_key_label, root, "ca.root_key_label", "ca.root_cert")
            crl = builder.sign(signing_key(session, cfg.ca.root_key_label), digest)
        this_update = crl.last_update_utc
        next_update = crl.next_update_utc
        assert next_update is not None  # noqa: S101 - set by build()

        def op(txn: WriteTxn) -> None:
            # The number is taken in the commit that records the CRL: a second run
            # racing this one fails here instead of publishing the same number twice.
            if txn.next_counter(counter_name(root)) != number:
                raise RootCrlRefused("another root CRL was published meanwhile; run it again")
            txn.audit(
                at_us=epoch_us(to_epoch(now)),
                actor="cli",
                action="crl.root_published",
                subject=str(number),
                detail={"next_update": next_update.isoformat(), "entries": str(len(revoked))},
            )

        store.write(op)
    finally:
        store.close()
    path = cfg.path(cfg.crl.publish_dir) / FILE_NAME
    write_atomically(
        path, [crl.public_bytes(serialization.Encoding.DER)], mtime=int(this_update.timestamp())
    )
    # Status replication reads the file when it meets the change: fed once it is there.
    store = open_store(cfg)
    try:
        store.write(lambda txn: txn.changed(CRL, FILE_NAME.encode()))
    finally:
        store.close()
    return RootCrl(path, number, this_update, next_update)
