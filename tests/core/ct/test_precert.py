"""A precertificate and its final certificate from the TBS encoder: the poison makes
the precertificate, three test logs' SCTs over its TBS without the poison go into the
final certificate, cryptography's tbs_precertificate_bytes of the final certificate is
exactly what the logs signed, and pkilint passes both."""

from __future__ import annotations

import datetime as dt

import msgspec
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from core.ca.issuer import issuer_info
from core.ca.lint import lint_findings
from core.ct.precert import POISON, sct_list, with_extension
from core.ct.sct import issuer_key_hash, signed_data, verify
from core.issuance.tbs import TbsEncoder
from signer.algorithms import KeyType
from signer.splice import assemble, signature_algorithm_der
from tests.core.ct.test_sct import log_key, sign
from tests.core.issuance.test_tbs import ORG, issuer

SPKI = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.mark.parametrize("level", ["ov", "ev"])
def test_precertificate_and_final_certificate(level: str) -> None:
    key_type = KeyType.ECDSA_P256
    issuing = issuer(key_type)
    info = issuer_info(issuing, key_type, "http://pki.example.com", ocsp=True)
    alg, placeholder = signature_algorithm_der(key_type)
    encoder = TbsEncoder(info, alg)
    subscriber = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(*SPKI)
    start = dt.datetime.now(dt.UTC).replace(microsecond=0)
    org = (
        ORG
        if level == "ov"
        else msgspec.structs.replace(
            ORG,
            level="ev",
            jurisdiction_country="JP",
            business_category="Private Organization",
            registration_number="0100-01-123456",
        )
    )

    def tbs(extra: bytes) -> bytes:
        return encoder.tbs(
            org=org,
            level=level,
            names=["www.example.co.jp"],
            common_name=None,
            spki=subscriber,
            serial=0x1234567890ABCDEF,
            partition=3,
            not_before=start,
            not_after=start + dt.timedelta(days=199),
            extra=extra,
        )

    # The engine encodes the TBS once and appends each extension to it.
    assert with_extension(tbs(b""), POISON) == tbs(POISON)
    pre = x509.load_der_x509_certificate(assemble(tbs(POISON), alg, placeholder))
    assert pre.extensions.get_extension_for_class(x509.PrecertPoison).critical
    assert (
        lint_findings(pre.public_bytes(serialization.Encoding.DER), f"{level}_precertificate") == []
    )

    ikh = issuer_key_hash(issuing.public_key().public_bytes(*SPKI))
    logs = [log_key() for _ in range(3)]
    signed_tbs = tbs(b"")
    scts = [sign(k, der, signed_tbs, ikh, 1_796_000_000_000 + i) for i, (k, der) in enumerate(logs)]
    assert with_extension(signed_tbs, sct_list(scts)) == tbs(sct_list(scts))
    final_der = assemble(tbs(sct_list(scts)), alg, placeholder)
    final = x509.load_der_x509_certificate(final_der)
    with pytest.raises(x509.ExtensionNotFound):
        final.extensions.get_extension_for_class(x509.PrecertPoison)
    listed = final.extensions.get_extension_for_class(
        x509.PrecertificateSignedCertificateTimestamps
    )
    assert len(listed.value) == 3
    # What the logs signed is the final certificate's TBS without its SCT list.
    assert final.tbs_precertificate_bytes == signed_tbs
    for sct, (_, der) in zip(scts, logs, strict=True):
        verify(sct, der, signed_data(sct, tbs=final.tbs_precertificate_bytes, issuer_key_hash=ikh))
    assert lint_findings(final_der, level) == []
