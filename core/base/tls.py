"""TLS server contexts to Mozilla's "intermediate" profile (server-side TLS, version 5):
TLS 1.2 and 1.3, ECDHE with AES-GCM or ChaCha20-Poly1305, and the key exchange groups
X25519, P-256 and P-384 only.

Python 3.11's `ssl` can name one group (`set_ecdh_curve`), not a list, and OpenSSL 3
offers X448 and P-521 besides by default. The list is set with OpenSSL's own
`SSL_CTX_set1_groups_list` (a control call) on the context's SSL_CTX, reached through
ctypes from the `_ssl` module's own library; the pointer is checked against a setting
read back first, and a context that cannot be restricted is refused, never served.
"""

from __future__ import annotations

import ctypes
import ssl
from functools import cache
from typing import Any

from core.base.errors import HankoError

GROUPS = b"X25519:P-256:P-384"
CIPHERS = (
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
)
_SSL_CTRL_SET_GROUPS_LIST = 92
# OpenSSL's SSL_VERIFY_* flags for Python's verify modes.
_VERIFY_FLAGS = {ssl.CERT_NONE: 0, ssl.CERT_OPTIONAL: 1, ssl.CERT_REQUIRED: 3}


class TlsSetupError(HankoError):
    code = "tls_setup"


@cache
def _libssl() -> Any:
    import _ssl

    lib = ctypes.CDLL(_ssl.__file__)  # its symbols and those of the libssl it links
    lib.SSL_CTX_ctrl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_long, ctypes.c_void_p]
    lib.SSL_CTX_ctrl.restype = ctypes.c_long
    lib.SSL_CTX_get_verify_mode.argtypes = [ctypes.c_void_p]
    lib.SSL_CTX_get_verify_mode.restype = ctypes.c_int
    return lib


def _ssl_ctx(ctx: ssl.SSLContext) -> int:
    """The SSL_CTX* of a context: CPython's PySSLContext holds it right after the
    object header."""
    pointer = ctypes.c_void_p.from_address(id(ctx) + object.__basicsize__).value
    if not pointer:
        raise TlsSetupError("TLS: the context has no OpenSSL context")
    return int(pointer)


def restrict_groups(ctx: ssl.SSLContext, groups: bytes = GROUPS) -> None:
    """Offer and accept only `groups` for the key exchange."""
    try:
        lib = _libssl()
        pointer = _ssl_ctx(ctx)
        if lib.SSL_CTX_get_verify_mode(pointer) != _VERIFY_FLAGS[ctx.verify_mode]:
            raise TlsSetupError("TLS: the OpenSSL context could not be located")
        done = lib.SSL_CTX_ctrl(pointer, _SSL_CTRL_SET_GROUPS_LIST, 0, ctypes.c_char_p(groups))
    except (OSError, AttributeError) as exc:
        raise TlsSetupError(f"TLS: cannot set the key exchange groups: {exc}") from None
    if done != 1:
        raise TlsSetupError(f"TLS: OpenSSL refused the groups {groups.decode()}")


def server_context() -> ssl.SSLContext:
    """A server context to the intermediate profile, before certificates are loaded."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(CIPHERS)
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    restrict_groups(ctx)
    return ctx
