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
    urls: CaUrls
    ocsp: bool

    def crl_url(self, partition: int) -> str:
        return f"{self.urls.crl}/{partition}.crl"

    def delta_crl_url(self, partition: int) -> str:
        return f"{self.urls.crl}/{partition}-delta.crl"

    @property
    def ocsp_url(self) -> str:
        return self.urls.ocsp

    @property
    def ca_issuers_url(self) -> str:
        return self.urls.issuer


@dataclass(frozen=True)
class CaUrls:
    """The public URLs written into certificates: the OCSP responder, the folder of the
    partition CRLs, and the issuing CA's certificate (AIA caIssuers)."""

    ocsp: str
    crl: str  # partition p's CRL is {crl}/{p}.crl
    issuer: str

    @classmethod
    def from_base(cls, base_url: str, *, ocsp: str = "", crl: str = "", issuer: str = "") -> CaUrls:
        """Each URL as given, or under `base_url` where it is empty."""
        base = base_url.rstrip("/")
        return cls(
            ocsp=ocsp or f"{base}/ocsp",
            crl=(crl or f"{base}/crl").rstrip("/"),
            issuer=issuer or f"{base}/ca/issuing.cer",
        )


def issuer_info(
    cert: x509.Certificate, key_type: KeyType, urls: CaUrls | str, *, ocsp: bool
) -> IssuerInfo:
    """`urls` may be a base URL (every URL under it)."""
    ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    if isinstance(urls, str):
        urls = CaUrls.from_base(urls)
    return IssuerInfo(cert, key_type, ski, urls, ocsp)
