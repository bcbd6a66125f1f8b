"""Which addresses the service may connect to on a customer's word (ACME validation,
webhooks): public ones only, unless private targets are allowed (tests, a private CA)."""

from __future__ import annotations

import ipaddress


def allowed_address(address: str, *, allow_private: bool) -> bool:
    ip = ipaddress.ip_address(address)
    if allow_private:
        return not ip.is_unspecified and not ip.is_multicast
    return ip.is_global
