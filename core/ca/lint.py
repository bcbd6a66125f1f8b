"""pkilint in-process, for the lint step of issuance (BR linting before signing).

Validators are built once per certificate type; pkilint is imported only when linting
is switched on, since it takes a while to load.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from core.base.errors import PolicyError


@lru_cache(maxsize=4)
def _validator(level: str) -> tuple[Any, Any, Any]:
    from pkilint import finding_filter, loader  # noqa: F401 - loaded together
    from pkilint.cabf import serverauth
    from pkilint.cabf.serverauth import serverauth_constants
    from pkilint.pkix import certificate

    kinds = serverauth_constants.CertificateType
    kind = {
        "ev": kinds.EV_FINAL_CERTIFICATE,
        "ocsp_responder": kinds.OCSP_RESPONDER,
        "ov_precertificate": kinds.OV_PRE_CERTIFICATE,
        "ev_precertificate": kinds.EV_PRE_CERTIFICATE,
    }.get(level, kinds.OV_FINAL_CERTIFICATE)
    validator = certificate.create_pkix_certificate_validator_container(
        serverauth.create_decoding_validators(), serverauth.create_validators(kind)
    )
    filters = serverauth.create_serverauth_finding_filters(kind)
    return validator, filters, loader.RFC5280CertificateDocumentLoader()


def lint_findings(der: bytes, level: str) -> list[str]:
    """Findings of ERROR or FATAL severity, as "CODE: message" lines. `level`: "ov" or
    "ev" for a subscriber certificate, "ov_precertificate" or "ev_precertificate" for
    its CT precertificate, "ocsp_responder" for a delegated responder's."""
    from pkilint import finding_filter
    from pkilint.validation import ValidationFindingSeverity

    validator, filters, doc_loader = _validator(level)
    doc = doc_loader.load_der_document(der, "certificate")
    results, _ = finding_filter.filter_results(filters, validator.validate(doc.root))
    found = []
    for result in results:
        for desc in result.finding_descriptions:
            if desc.finding.severity <= ValidationFindingSeverity.ERROR:
                found.append(f"{desc.finding.code}: {desc.message or ''}".rstrip(": "))
    return found


def require_clean(der: bytes, level: str) -> None:
    findings = lint_findings(der, level)
    if findings:
        raise PolicyError("lint_failed", "the certificate failed linting: " + "; ".join(findings))


@lru_cache(maxsize=2)
def _crl_validator(kind: str) -> tuple[Any, Any]:
    from pkilint import loader, pkix
    from pkilint.cabf import cabf_crl
    from pkilint.pkix import crl, extension, name

    crl_type = crl.CertificateRevocationListType[kind]
    validator = crl.create_pkix_crl_validator_container(
        [
            pkix.create_attribute_decoder(name.ATTRIBUTE_TYPE_MAPPINGS),
            pkix.create_extension_decoder(extension.EXTENSION_MAPPINGS),
        ],
        [
            crl.create_issuer_validator_container([]),
            crl.create_validity_validator_container(
                [cabf_crl.create_validity_period_validator(crl_type)]
            ),
            crl.create_extensions_validator_container([]),
            cabf_crl.CabfCrlReasonCodeAllowlistValidator(crl_type),
        ],
    )
    return validator, loader.RFC5280CertificateListDocumentLoader()


def crl_findings(der: bytes, kind: str) -> list[str]:
    """pkilint's BR findings of ERROR or FATAL severity for a CRL; `kind` is "CRL"
    (subscriber certificates) or "ARL" (CA certificates, the root's)."""
    from pkilint.validation import ValidationFindingSeverity

    validator, doc_loader = _crl_validator(kind)
    doc = doc_loader.load_der_document(der, "crl")
    return [
        f"{desc.finding.code}: {desc.message or ''}".rstrip(": ")
        for result in validator.validate(doc.root)
        for desc in result.finding_descriptions
        if desc.finding.severity <= ValidationFindingSeverity.ERROR
    ]
