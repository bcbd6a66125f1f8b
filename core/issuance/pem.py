"""Serials and certificates as users write and read them."""

from __future__ import annotations

import base64
import re

from core.base.errors import PolicyError
from core.store.keys import serial_bytes

_SERIAL_HEX = re.compile(r"^[0-9a-fA-F]{1,40}$")


def pem_certificate(der: bytes) -> str:
    """PEM straight from DER (RFC 7468): no parse, no re-encode."""
    b64 = base64.b64encode(der).decode()
    body = "\n".join(b64[i : i + 64] for i in range(0, len(b64), 64))
    return f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n"


def serial_from_hex(text: str) -> bytes:
    """A serial from user input (URL path, CLI): at most 20 octets of hex, positive."""
    value = int(text, 16) if _SERIAL_HEX.match(text) else 0
    if value <= 0 or value.bit_length() > 160:
        raise PolicyError("serial_invalid", f"{text[:60]!r} is not a certificate serial in hex")
    return serial_bytes(value)
