"""What `hanko serve` or `hanko responder` tells each responder process (JSON on its
command line; never a secret)."""

from __future__ import annotations

from typing import Any

import msgspec

from ocsp.status.paths import StatusPaths


def http_limits(section: Any) -> dict[str, Any]:
    """The HTTP limits of a responder, from a config table that names them as `[ocsp]`
    does (`[ocsp]` on the CA host, `[responder]` on a responder host)."""
    return {
        "max_header": section.max_header.bytes,
        "max_body": section.max_body.bytes,
        "idle_timeout": section.idle_timeout.seconds,
        "request_timeout": section.request_timeout.seconds,
        "cache_entries": section.cache_entries,
        "max_connections": section.max_connections,
        "max_connections_per_client": section.max_connections_per_client,
    }


class ServerSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    host: str
    port: int
    # From the CA host's store (`hanko serve`): the store, the issuing CA, the hashes.
    store_path: str = ""
    map_size: int = 0
    # Or a PostgreSQL store (its password in the environment, sources.STORE_PASSWORD_ENV).
    store_dsn: str = ""
    issuer_certs: list[str] = msgspec.field(default_factory=list)  # every issuer's PEM
    hashes: list[int] = msgspec.field(default_factory=list)
    paths: StatusPaths = msgspec.field(default_factory=StatusPaths)
    # Or a responder host's copy of the replicated status (`hanko responder`): then the
    # issuers, hashes, paths and files are the CA's profile in it.
    copy_path: str = ""
    max_header: int = 8192
    max_body: int = 4096
    idle_timeout: float = 30.0
    request_timeout: float = 10.0
    cache_entries: int = 200_000
    max_connections: int = 10_000
    max_connections_per_client: int = 256
    # The CRL publish directory, served under /crl/ (empty: no CRLs here).
    crl_dir: str = ""
    crl_max_age: int = 60


class CopierSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """What `hanko responder` tells its copier process (the Redis password is in the
    environment, sources.PASSWORD_ENV)."""

    redis: str
    path: str  # the copy
    prefix: str = "hanko:"
    timeout: float = 2.0  # one Redis round trip longer than this: Redis is unreachable
    # /readyz says not ready once the copy may be this far behind the primary.
    max_lag: float = 10.0
    log_format: str = "text"
    log_level: str = "info"
