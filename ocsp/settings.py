"""What `hanko serve` tells each responder process (JSON on its command line)."""

from __future__ import annotations

import msgspec

from ocsp.paths import StatusPaths


class ServerSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    store_path: str
    map_size: int
    issuer_cert: str
    host: str
    port: int
    hashes: list[int]
    paths: StatusPaths = msgspec.field(default_factory=StatusPaths)
    max_header: int = 8192
    max_body: int = 4096
    idle_timeout: float = 30.0
    request_timeout: float = 10.0
    cache_entries: int = 200_000
    max_connections: int = 10_000
    # The CRL publish directory, served under /crl/ (empty: no CRLs here).
    crl_dir: str = ""
    crl_max_age: int = 60
