"""`hanko responder -c RESPONDER.toml`: a status host that holds no store and no HSM,
only a Redis replica of the CA's status and its own copy of it. One `[responder]`
table; `redis` and `listen` are all it needs (what it serves and where comes from the
CA's profile in Redis).
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from core.base.errors import HankoError
from core.base.units import ByteSize, Duration
from core.config.checks import listen_problems, redis_url_problems
from core.config.secret_ref import SecretRef
from core.config.secrets import read_secret
from core.config.settings import LogConfig

_STRICT = {"forbid_unknown_fields": True, "kw_only": True, "frozen": True}


class ResponderConfig(msgspec.Struct, **_STRICT):
    # This host's Redis, a read-only replica of the CA's primary (`replicaof`), e.g.
    # "redis://127.0.0.1:6379/0", or "rediss://" for TLS.
    redis: str
    # Where OCSP, /crl/ and the CA certificates are served (the URLs' host name goes
    # to this host, usually through a load balancer or CDN).
    listen: str
    # Responder processes sharing the port; 0 = one per CPU.
    processes: int = 0
    # This host's copy of the status (LMDB, kept across restarts; 0700): a folder,
    # relative to this file's; "" = "<this file's name>.status" beside it.
    path: str = ""
    password: SecretRef | None = None
    # The CA's `[replication] prefix`.
    prefix: str = "hanko:"
    # /readyz answers 503 once the replica's link to the primary has been down (or
    # Redis unreachable) this long: what is served may be that stale.
    max_lag: Duration = msgspec.field(default_factory=lambda: Duration("10s"))
    # One Redis round trip longer than this counts as Redis unreachable.
    timeout: Duration = msgspec.field(default_factory=lambda: Duration("2s"))
    # As [ocsp] on the CA host.
    cache_entries: int = 200_000
    max_connections: int = 10_000
    max_connections_per_client: int = 256
    max_header: ByteSize = msgspec.field(default_factory=lambda: ByteSize("8KiB"))
    max_body: ByteSize = msgspec.field(default_factory=lambda: ByteSize("4KiB"))
    idle_timeout: Duration = msgspec.field(default_factory=lambda: Duration("30s"))
    request_timeout: Duration = msgspec.field(default_factory=lambda: Duration("10s"))


class ResponderFile(msgspec.Struct, **_STRICT):
    responder: ResponderConfig
    # As on the CA host: "json" or "text" lines to stderr.
    log: LogConfig = msgspec.field(default_factory=LogConfig)
    base_dir: str = ""

    def path(self, value: str) -> Path:
        p = Path(value)
        return p if p.is_absolute() else Path(self.base_dir) / p


def responder_problems(cfg: ResponderFile) -> list[str]:
    r = cfg.responder
    problems = listen_problems(r.listen, "responder.listen")
    problems += redis_url_problems(r.redis, "responder")
    if r.password is not None:
        if (r.password.file is None) == (r.password.env is None):
            problems.append("responder.password: give exactly one of 'file' or 'env'")
        else:
            try:
                read_secret(cfg, r.password)
            except HankoError as exc:
                problems.append(f"responder.password: {exc.message}")
    if r.processes < 0:
        problems.append("responder.processes: must be 0 (one per CPU) or more")
    if not r.prefix or any(c.isspace() for c in r.prefix):
        problems.append("responder.prefix: a non-empty prefix without spaces")
    if not 1.0 <= r.max_lag.seconds <= 86400:
        problems.append("responder.max_lag: between 1s and 24h")
    if not 0.05 <= r.timeout.seconds <= 60:
        problems.append("responder.timeout: between 50ms and 60s")
    if not 1 <= r.max_connections <= 1_000_000:
        problems.append("responder.max_connections: must be between 1 and 1000000")
    if not 0 <= r.max_connections_per_client <= 1_000_000:
        problems.append("responder.max_connections_per_client: 0 (no cap) to 1000000")
    if not 1 <= r.cache_entries <= 100_000_000:
        problems.append("responder.cache_entries: must be between 1 and 100000000")
    return problems
