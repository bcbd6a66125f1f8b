"""The CA certificates at the paths the certificates' AIA caIssuers names, as DER
(RFC 5280 4.2.2.1: application/pkix-cert), and the root CA's CRL at the path of the
issuing CA's CRL distribution point, on the status listener.

Each file is read once per version (a renewal writes a new file over the name) and
looked at again with one stat per request, as the CRL files are.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from core.base.httpdate import http_date
from ocsp.status.crl_files import CrlFile, etag

# A CA certificate changes only when the CA renews it; a day in a CDN is harmless.
MAX_AGE = 86400
_PKIX_CERT = b"application/pkix-cert"
_PKIX_CRL = b"application/pkix-crl"


class CaFiles:
    def __init__(self, files: Mapping[str, str]) -> None:
        self._paths = {url.encode(): Path(file) for url, file in files.items()}
        self._cached: dict[bytes, CrlFile] = {}

    def get(self, path: bytes) -> CrlFile | None:
        file = self._paths.get(path)
        if file is None:
            return None
        try:
            st = os.stat(file)
        except OSError:
            self._cached.pop(path, None)
            return None
        version = (st.st_ino, st.st_size, st.st_mtime_ns)
        cached = self._cached.get(path)
        if cached is not None and cached.version == version:
            return cached
        try:
            data = file.read_bytes()
            der = (
                data
                if file.suffix == ".crl"
                else (
                    x509.load_pem_x509_certificate(data).public_bytes(serialization.Encoding.DER)
                    if data.lstrip().startswith(b"-----")
                    else x509.load_der_x509_certificate(data).public_bytes(
                        serialization.Encoding.DER
                    )
                )
            )
        except (OSError, ValueError):
            return None
        tag = etag(st)
        lines = b"ETag: %s\r\nLast-Modified: %s\r\nCache-Control: public, max-age=%d\r\n" % (
            tag,
            http_date(int(st.st_mtime)),
            MAX_AGE,
        )
        entry = CrlFile(body=der, etag=tag, mtime=int(st.st_mtime), headers=lines, version=version)
        self._cached[path] = entry
        return entry

    def content_type(self, path: bytes) -> bytes:
        file = self._paths.get(path)
        return _PKIX_CRL if file is not None and file.suffix == ".crl" else _PKIX_CERT
