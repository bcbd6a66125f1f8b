"""HTTP dates (RFC 9110 5.6.7), as the OCSP responder and the CRL server write them."""

from __future__ import annotations

import email.utils


def http_date(epoch: float) -> bytes:
    return email.utils.formatdate(epoch, usegmt=True).encode()
