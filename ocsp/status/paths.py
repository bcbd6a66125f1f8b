"""What the status listener serves, by path, with no I/O: OCSP under the path of the
OCSP URL, CRL files under the path of the CRL URL, and the CA certificates at the
paths the certificates' AIA names. Anything else is 404: an OCSP error body for a
stray path told crawlers and CDNs that every URL of the host exists.
"""

from __future__ import annotations

import enum
from urllib.parse import urlsplit

import msgspec


class Route(enum.Enum):
    OCSP = "ocsp"
    CRL = "crl"
    CA_FILE = "ca_file"
    READY = "ready"  # /readyz, for load balancers
    NOT_FOUND = "not_found"


class StatusPaths(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`ocsp` and `crl` are path prefixes without a trailing slash ("" for the root);
    `ca_files` names each served certificate's path and its PEM file."""

    ocsp: str = "/ocsp"
    crl: str = "/crl"
    ca_files: dict[str, str] = msgspec.field(default_factory=dict)


def url_path(url: str) -> str:
    """The path of a URL, without a trailing slash ("" for the root)."""
    return urlsplit(url).path.rstrip("/")


class Router:
    """Routes a request target; built once per responder process."""

    def __init__(self, paths: StatusPaths) -> None:
        self._ocsp = paths.ocsp.encode()
        self._ocsp_dir = self._ocsp + b"/"
        self.crl_prefix = paths.crl.encode() + b"/"
        self._files = frozenset(p.encode() for p in paths.ca_files)

    @property
    def ocsp_prefix(self) -> bytes:
        """What precedes the base64 request in a GET target."""
        return self._ocsp_dir

    def route(self, method: bytes, target: bytes) -> Route:
        if target == b"/readyz":
            return Route.READY
        # The common case first. At the root, a GET's whole path is the request unless
        # it names a CRL or a CA file.
        if target.startswith(self._ocsp_dir) and (
            self._ocsp
            or not (target.startswith(self.crl_prefix) or target.split(b"?", 1)[0] in self._files)
        ):
            return Route.OCSP
        if target.startswith(self.crl_prefix):
            return Route.CRL
        path = target.split(b"?", 1)[0]
        if path in self._files:
            return Route.CA_FILE
        if method == b"POST" and path == self._ocsp:
            return Route.OCSP
        return Route.NOT_FOUND
