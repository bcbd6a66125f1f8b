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
    kind = {"ev": kinds.EV_FINAL_CERTIFICATE, "ocsp_responder": kinds.OCSP_RESPONDER}.get(
        level, kinds.OV_FINAL_CERTIFICATE
    )
    validator = certificate.create_pkix_certificate_validator_container(
        serverauth.create_decoding_validators(), serverauth.create_validators(kind)
    )
    filters = serverauth.create_serverauth_finding_filters(kind)
    return validator, filters, loader.RFC5280CertificateDocumentLoader()


def lint_findings(der: bytes, level: str) -> list[str]:
    """Findings of ERROR or FATAL severity, as "CODE: message" lines. `level`: "ov" or
    "ev" for a subscriber certificate, "ocsp_responder" for a delegated responder's."""
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
