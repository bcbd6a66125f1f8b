"""An issuing CA as every builder needs it: certificate, key type, key id and URLs,
derived once at start-up from the configured certificate; and what selection needs:
its name, HSM key, profiles, shards and dates of use."""

from __future__ import annotations

from dataclasses import dataclass, field

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
    name: str = "issuing"
    key_label: str = ""
    profiles: frozenset[str] = field(default_factory=frozenset)  # empty: inactive
    shards: int = 16  # CRL shards: a certificate's is serial mod shards
    crl_folder: str = ""  # below the CRL path and the publish folder
    not_before: int | None = None  # dates of use, epoch seconds
    not_after: int | None = None
    retired: bool = False

    def issues(self, profile: str, now: int) -> bool:
        """Whether a request for `profile` at `now` may be signed by this issuer."""
        return (
            not self.retired
            and profile in self.profiles
            and (self.not_before is None or self.not_before <= now)
            and (self.not_after is None or now < self.not_after)
        )

    @property
    def ecdsa(self) -> bool:
        return self.key_type.value.startswith("ecdsa")

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
    cert: x509.Certificate,
    key_type: KeyType,
    urls: CaUrls | str,
    *,
    ocsp: bool,
    name: str = "issuing",
    key_label: str = "",
    profiles: frozenset[str] = frozenset(),
    shards: int = 16,
    crl_folder: str = "",
    not_before: int | None = None,
    not_after: int | None = None,
    retired: bool = False,
) -> IssuerInfo:
    """`urls` may be a base URL (every URL under it)."""
    if isinstance(urls, str):
        urls = CaUrls.from_base(urls)
    return IssuerInfo(
        cert,
        key_type,
        key_id(cert),
        urls,
        ocsp,
        name=name,
        key_label=key_label,
        profiles=profiles,
        shards=shards,
        crl_folder=crl_folder,
        not_before=not_before,
        not_after=not_after,
        retired=retired,
    )


def key_id(cert: x509.Certificate) -> bytes:
    """A CA certificate's SubjectKeyIdentifier: the store's id of the issuer."""
    return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
