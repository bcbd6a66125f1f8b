"""The issuing CA as every builder needs it: certificate, key type, key id and URLs,
derived once at start-up from the configured certificate."""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509

from signer.algorithms import KeyType


@dataclass(frozen=True)
class IssuerInfo:
    """What every template needs from the issuing CA, derived once at start-up."""

    certificate: x509.Certificate
    key_type: KeyType
    key_id: bytes  # SKI of the issuing CA: the store's issuer id
    base_url: str
    ocsp: bool

    def crl_url(self, partition: int) -> str:
        return f"{self.base_url}/crl/{partition}.crl"

    def delta_crl_url(self, partition: int) -> str:
        return f"{self.base_url}/crl/{partition}-delta.crl"

    @property
    def ocsp_url(self) -> str:
        return f"{self.base_url}/ocsp"

    @property
    def ca_issuers_url(self) -> str:
        return f"{self.base_url}/ca/issuing.cer"


def issuer_info(
    cert: x509.Certificate, key_type: KeyType, base_url: str, *, ocsp: bool
) -> IssuerInfo:
    ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    return IssuerInfo(cert, key_type, ski, base_url.rstrip("/"), ocsp)
