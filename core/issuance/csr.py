"""CSR intake: what customers paste, parsed strictly and reduced to what matters.

Pure. Accepts PEM (both `CERTIFICATE REQUEST` and `NEW CERTIFICATE REQUEST`, with odd
whitespace and no final newline) or DER; verifies the proof of possession; returns the
public key and the requested names (the CN first, then the SAN DNS names, deduplicated).
Subject fields such as OU and emailAddress are dropped: the certificate's subject comes
from the validated organization, never from the CSR.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import NameOID

from core.base.errors import PolicyError

MAX_CSR_BYTES = 64 * 1024
_PEM = re.compile(
    rb"-----BEGIN (?:NEW )?CERTIFICATE REQUEST-----(.*?)-----END (?:NEW )?CERTIFICATE REQUEST-----",
    re.DOTALL,
)


@dataclass(frozen=True)
class CsrRequest:
    """What a CSR asks for, as written by the customer."""

    names: tuple[str, ...]  # CN first, then the SAN DNS names, deduplicated
    common_name: str | None


def _der_from(data: bytes) -> bytes:
    if len(data) > MAX_CSR_BYTES:
        raise PolicyError("csr_too_large", f"the CSR is larger than {MAX_CSR_BYTES} bytes")
    if data.startswith(b"\x30"):
        # Binary DER is taken as it is: stripping "whitespace" would eat a final
        # signature byte that happens to be 0x09-0x0d or 0x20.
        return data
    stripped = data.strip()
    match = _PEM.search(stripped.replace(b"\r", b""))
    if match is None:
        raise PolicyError(
            "csr_malformed",
            "no CSR found: paste everything from -----BEGIN CERTIFICATE REQUEST----- to"
            " -----END CERTIFICATE REQUEST-----",
        )
    body = b"".join(match.group(1).split())
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise PolicyError("csr_malformed", "the CSR's base64 body is damaged") from None


def parse_csr(data: bytes | str) -> tuple[CertificatePublicKeyTypes, CsrRequest]:
    """The CSR's public key (its proof of possession verified) and what it asks for."""
    raw = data.encode() if isinstance(data, str) else data
    der = _der_from(raw)
    try:
        csr = x509.load_der_x509_csr(der)
        public_key = csr.public_key()
    except (ValueError, TypeError) as exc:
        raise PolicyError("csr_malformed", f"the CSR cannot be parsed: {exc}") from None
    try:
        valid = csr.is_signature_valid
    except Exception:  # unsupported signature algorithms surface as various errors
        valid = False
    if not valid:
        raise PolicyError(
            "csr_signature_invalid",
            "the CSR's signature does not verify (proof of possession failed)",
        )
    cns = [a.value for a in csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    if len(cns) > 1:
        raise PolicyError("csr_multiple_common_names", "the CSR has more than one common name")
    common_name = str(cns[0]) if cns else None
    names: list[str] = [common_name] if common_name is not None else []
    try:
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        san = None
    except ValueError as exc:
        raise PolicyError(
            "csr_malformed", f"the CSR's extensions cannot be parsed: {exc}"
        ) from None
    if san is not None:
        if san.get_values_for_type(x509.IPAddress):
            raise PolicyError(
                "name_is_ip", "the CSR asks for an IP address; certificates here name hosts"
            )
        for other in (x509.RFC822Name, x509.UniformResourceIdentifier, x509.DirectoryName):
            if san.get_values_for_type(other):
                raise PolicyError(
                    "csr_unsupported_san",
                    f"the CSR asks for a {other.__name__}; only DNS names are issued",
                )
        names += [str(v) for v in san.get_values_for_type(x509.DNSName)]
    if not names:
        raise PolicyError(
            "csr_no_names", "the CSR names no host: set the common name or a DNS subjectAltName"
        )
    seen: dict[str, None] = {}
    for name in names:
        seen.setdefault(name, None)
    return public_key, CsrRequest(names=tuple(seen), common_name=common_name)
