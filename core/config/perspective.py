"""`hanko perspective serve -c DIR/perspective.toml`: a remote perspective, a small
service that holds no store, no HSM key and no secret of the CA; it performs the
checks the primary sends it (DNS through its own resolver, HTTP fetches) and says what
it saw. `hanko perspective init` writes this file."""

from __future__ import annotations

from pathlib import Path

import msgspec

from core.base.units import ByteSize, Duration
from core.config.checks import is_loopback, listen_problems, parse_listen
from core.config.mpic import CODE, RIRS
from core.config.settings import DnsConfig, LogConfig

_STRICT = {"forbid_unknown_fields": True, "kw_only": True, "frozen": True}


class PerspectiveConfig(msgspec.Struct, **_STRICT):
    code: str  # as the primary's [mpic] perspectives names it
    rir: str  # the Regional Internet Registry of the network it checks from
    listen: str  # HOST:PORT, mutual TLS only
    # The listener's certificate and key from the CA's internal TLS CA, and that CA:
    # a client must present a certificate from it.
    tls_cert: str = "tls/perspective.pem"
    tls_key: str = "tls/perspective.key"
    client_ca: str = "tls/internal-ca.pem"
    # A whole request: every check of it, lookups, connections and redirects.
    timeout: Duration = msgspec.field(default_factory=lambda: Duration("8s"))
    # Checks under way at once, over every request; the others wait their turn.
    max_concurrent_checks: int = 256
    max_connections: int = 64
    max_connections_per_client: int = 32
    max_body: ByteSize = msgspec.field(default_factory=lambda: ByteSize("1MiB"))
    header_timeout: Duration = msgspec.field(default_factory=lambda: Duration("10s"))
    body_timeout: Duration = msgspec.field(default_factory=lambda: Duration("10s"))
    # Loopback and private addresses as http-01 and website targets: tests only, and
    # only with a loopback listener.
    allow_private_targets: bool = False


class PerspectiveFile(msgspec.Struct, **_STRICT):
    perspective: PerspectiveConfig
    # Its own recursive resolver (validating DNSSEC): never the primary's, nor one
    # another perspective shares (BR 3.2.2.9: no shared DNS cache).
    dns: DnsConfig
    log: LogConfig = msgspec.field(default_factory=LogConfig)
    base_dir: str = ""

    def path(self, value: str) -> Path:
        p = Path(value)
        return p if p.is_absolute() else Path(self.base_dir) / p


def perspective_problems(cfg: PerspectiveFile) -> list[str]:
    p = cfg.perspective
    problems = listen_problems(p.listen, "perspective.listen")
    if not CODE.match(p.code):
        problems.append(f"perspective.code: lower-case letters, digits and '-' ({p.code!r})")
    if p.rir not in RIRS:
        problems.append(f"perspective.rir: one of {', '.join(RIRS)} ({p.rir!r})")
    if not cfg.dns.resolver:
        problems.append("dns.resolver: HOST:PORT of this perspective's own resolver")
    else:
        problems += listen_problems(cfg.dns.resolver, "dns.resolver")
    for where, value in (
        ("perspective.tls_cert", p.tls_cert),
        ("perspective.tls_key", p.tls_key),
        ("perspective.client_ca", p.client_ca),
    ):
        if not cfg.path(value).is_file():
            problems.append(f"{where}: file {cfg.path(value)} does not exist")
    if not 1 <= p.timeout.seconds <= 60:
        problems.append("perspective.timeout: between 1s and 60s")
    if not 1 <= p.max_concurrent_checks <= 100_000:
        problems.append("perspective.max_concurrent_checks: between 1 and 100000")
    if not 1 <= p.max_connections <= 100_000:
        problems.append("perspective.max_connections: between 1 and 100000")
    if not 0 <= p.max_connections_per_client <= 100_000:
        problems.append("perspective.max_connections_per_client: 0 (no cap) to 100000")
    if not 1024 <= p.max_body.bytes <= 16 << 20:
        problems.append("perspective.max_body: between 1KiB and 16MiB")
    if p.allow_private_targets and not problems and not is_loopback(parse_listen(p.listen)[0]):
        problems.append("perspective.allow_private_targets: only with a loopback listener")
    return problems
