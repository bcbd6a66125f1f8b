"""The configuration's shape: one msgspec Struct per TOML table, unknown keys refused.

Defaults live here with the reason for each. The checks that need more than a type
(ranges, files, secrets) are in core/config/checks.py; loading in core/config/load.py.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import msgspec

from core.base.reasons import ALL_REASON_NAMES
from core.base.units import ByteSize, Duration
from core.config.domain_control import CaaConfig, DcvConfig, EmailConfig
from core.config.issuers import LEGACY_NAME, IssuerConfig, ResolvedIssuer, resolve
from core.config.mpic import MpicConfig
from core.config.schedule import BR_SCHEDULE, ScheduleEntry
from core.config.secret_ref import SecretRef

# The kinds core/licenses/policy.py implements (named here: config imports no policy).
LICENSE_KINDS = ("pooled", "non_pooled", "domain_bundle", "coupon", "monthly")

_STRICT = {"forbid_unknown_fields": True, "kw_only": True, "frozen": True}


# What a PostgreSQL commit waits for before hanko acknowledges it: "on" (flushed on the
# primary, and on a synchronous standby when the server names one), "remote_apply" (also
# applied there, so a promoted standby reads it at once), "remote_write". "local" and
# "off" are refused: a standby could lose what was acknowledged, or the primary itself.
SYNCHRONOUS_COMMIT = ("on", "remote_apply", "remote_write")


class StoreConfig(msgspec.Struct, **_STRICT):
    # "lmdb": one host, embedded (path, map sizes); "postgresql": a database several
    # hanko processes and hosts share (dsn, password, ...).
    backend: Literal["lmdb", "postgresql"] = "lmdb"
    path: str = "lmdb"
    # postgresql://USER@HOST:PORT/DBNAME (libpq URI or key=value); the password goes in
    # `password`, never in the DSN.
    dsn: str = ""
    password: SecretRef | None = None
    # Migrations (`hanko store migrate`) run as the role that owns the tables; the role
    # in `dsn` then gets only INSERT and SELECT on the audit log and the ledger. Empty:
    # `dsn`'s own role migrates (its append-only tables are guarded by triggers only).
    admin_dsn: str = ""
    admin_password: SecretRef | None = None
    synchronous_commit: str = "on"
    pool_size: int = 8
    connect_timeout: Duration = msgspec.field(default_factory=lambda: Duration("5s"))
    # A statement (a group's commit included) that runs longer fails alone.
    statement_timeout: Duration = msgspec.field(default_factory=lambda: Duration("30s"))
    # LMDB reserves address space, not disk: the map can be generous.
    map_size: ByteSize = msgspec.field(default_factory=lambda: ByteSize("8GiB"))
    # A write that does not fit doubles the map, up to this; past it writes answer 503
    # store_full (reads go on) until it is raised.
    max_map_size: ByteSize = msgspec.field(default_factory=lambda: ByteSize("64GiB"))
    # Group commit: at most this many queued writes share one durable commit.
    group_commit_max: int = 2048
    # Extra time the writer waits for more work before committing; 0 commits as soon
    # as the previous commit is done (the queue that built up meanwhile is the group).
    group_commit_linger: Duration = msgspec.field(default_factory=lambda: Duration("0ms"))


class HsmConfig(msgspec.Struct, **_STRICT):
    module: str = "/usr/lib/softhsm/libsofthsm2.so"
    token_label: str = "hanko"  # noqa: S105 - a token label, not a secret
    pin: SecretRef = msgspec.field(default_factory=SecretRef)
    # SoftHSM only: its configuration file (sets SOFTHSM2_CONF for hanko and its workers).
    softhsm_conf: str | None = None


class SignerConfig(msgspec.Struct, **_STRICT):
    # 0 means one worker process per CPU.
    workers: int = 0
    batch_max: int = 64
    # Batches of refresh and bulk requests only may grow to this (fewer, larger batches
    # cost the core less per signature; interactive requests still go in batch_max).
    # 0: four times batch_max, at most 4096 and queue_max (256 for the defaults).
    bulk_batch_max: int = 0
    batch_delay: Duration = msgspec.field(default_factory=lambda: Duration("500us"))
    queue_max: int = 8192
    # A worker that does not answer a batch in this time is killed and replaced.
    batch_timeout: Duration = msgspec.field(default_factory=lambda: Duration("30s"))

    @property
    def bulk_batch(self) -> int:
        """`bulk_batch_max` with its default worked out."""
        return self.bulk_batch_max or max(
            self.batch_max, min(4 * self.batch_max, 4096, self.queue_max)
        )


class CaConfig(msgspec.Struct, **_STRICT):
    root_cert: str
    # Public base URL written into AIA and CRL distribution points.
    base_url: str
    # The issuing CAs (core/config/issuers.py); `hanko ca issuer ...` edits this list.
    issuers: list[IssuerConfig] = msgspec.field(default_factory=list)
    # The one-issuer form of older files, read as one issuer named "issuing" with every
    # profile; check-config explains the [[ca.issuers]] form.
    issuer_cert: str = ""
    issuer_key_label: str = ""
    ocsp_responder_cert: str = ""
    ocsp_responder_key_label: str = ""
    key_type: Literal["ecdsa-p256", "ecdsa-p384", "rsa-2048", "rsa-3072"] = "ecdsa-p256"
    # Each of these defaults to a path under base_url: {base_url}/ocsp, {base_url}/crl
    # (the CRL path; each issuer's shards are in a folder below it) and, for the
    # one-issuer form, {base_url}/ca/issuing.cer (AIA caIssuers). The status listener
    # serves each at its URL's path.
    ocsp_url: str = ""
    crl_url: str = ""
    issuer_url: str = ""
    # The root CA's key: used only by `hanko ca root-crl`.
    root_key_label: str = "hanko-root-1"


class ProfileConfig(msgspec.Struct, **_STRICT):
    """A certificate product: what it may contain and how long it may live."""

    level: Literal["ov", "ev"]
    # What ACME clients read of it (the directory's meta.profiles).
    description: str = ""
    # The longest validity it issues, in days, when shorter than the BR's (a product
    # sold as 90 days; 7 for a short-lived certificate, BR 1.6.1). None: the BR's.
    max_days: int | None = None
    # Whether its certificates name the OCSP responder (AIA). A short-lived certificate
    # need carry no revocation information (BR 7.1.2.7.7, 7.1.2.11.2); hanko's keep the
    # CRL distribution point, as Let's Encrypt's do, so a key compromise still reaches
    # the CRLs browsers build their revocation lists from, and leave out OCSP.
    ocsp_url: bool = True
    # Wildcard names (*.example.co.jp). None: allowed for OV, never for EV (the EV
    # Guidelines forbid them; check-config refuses `wildcard = true` on an EV profile).
    wildcard: bool | None = None
    max_sans: int = 100
    # "rsa" accepts any RSA size >= 2048 bits; otherwise name each type.
    key_types: list[str] = msgspec.field(
        default_factory=lambda: ["rsa", "ecdsa-p256", "ecdsa-p384"]
    )
    # None: one day less than the maximum in force on the issuance date (the BR make
    # the maximum a MUST and one day less a SHOULD, to avoid leap-second ambiguity).
    default_validity_days: int | None = None
    # Put the first name into the subject's commonName too. The BR call a common name
    # NOT RECOMMENDED (pkilint warns), so only profiles for legacy clients turn it on.
    include_common_name: bool = False
    # Point certificates at delta CRLs (Freshest CRL). For private PKI profiles only: the
    # BR profile of a public TLS certificate has no such extension.
    delta_crl: bool = False
    # The license kinds that may pay for this profile's certificates.
    license_kinds: list[str] = msgspec.field(default_factory=lambda: list(LICENSE_KINDS))
    # The CRLReasons a revocation of this profile's certificates may give (BR 7.2.2
    # allows these six for subscriber certificates; a profile may narrow them).
    revocation_reasons: list[str] = msgspec.field(default_factory=lambda: list(ALL_REASON_NAMES))
    # A request for exactly one name, www.<registrable domain> (or the bare domain),
    # gets the other as a second SAN when that one is validated for the organization,
    # at no extra charge (hosting resellers' and Sectigo's rule; DigiCert's newer
    # products have none).
    www_pair: bool = False
    # Renewal opens this long before the renewed certificate's expiry.
    renewal_window: Duration = msgspec.field(default_factory=lambda: Duration("90d"))
    # A renewal is issued only once the renewed certificate has less than this left
    # (one product: applied for from 90 days, issued at 30): one asked for earlier is
    # scheduled for then, its charge held. None: issued when asked.
    renewal_issue_window: Duration | None = None
    # Every name of a certificate takes one licence unit (a live slot, a certificate's
    # days): "the number of FQDNs is the number of licences" (one product).
    charge_per_name: bool = False
    # Reissues of one order at most (None: unlimited), and only this long after its
    # first issuance (None: any time; the Secom EV example: 1 within 25d).
    reissue_limit: int | None = None
    reissue_window: Duration | None = None
    # Adding or changing names by reissue: only this long after first issuance.
    name_change_window: Duration = msgspec.field(default_factory=lambda: Duration("30d"))
    # Certificate Transparency for this profile's certificates; None: on once [ct]
    # lists logs.
    ct: bool | None = None

    @property
    def allows_wildcard(self) -> bool:
        """Whether `*.` names may be issued: never on an EV profile, whatever is set."""
        return self.level != "ev" and self.wildcard is not False


def _default_profiles() -> dict[str, ProfileConfig]:
    return {
        "ov": ProfileConfig(level="ov", www_pair=True),
        "ev": ProfileConfig(level="ev", wildcard=False, www_pair=True),
    }


class IssuanceConfig(msgspec.Struct, **_STRICT):
    # pkilint on the throwaway-key certificate before the real signature: none, a
    # sample, or all of them.
    lint: Literal["none", "sample", "all"] = "none"
    lint_sample_rate: float = 0.01
    # One SHA-256 of a SubjectPublicKeyInfo (hex) per line: keys never to certify.
    blocked_keys_file: str | None = None
    # The BR validity schedule (SC-081); the entry in force on the issuance date applies.
    validity_schedule: list[ScheduleEntry] = msgspec.field(
        default_factory=lambda: list(BR_SCHEDULE)
    )
    profiles: dict[str, ProfileConfig] = msgspec.field(default_factory=_default_profiles)
    # How often the leader looks for scheduled renewals whose issue window opened.
    renewal_sweep: Duration = msgspec.field(default_factory=lambda: Duration("1m"))


class LicenseConfig(msgspec.Struct, **_STRICT):
    # Every issuance draws on a license of the organization's account. Off only for a
    # private CA that does not sell certificates (and the benchmark's baseline).
    enforce: bool = True
    # The calendar contracts are written in (minutes east of UTC; Japan: 540): a term
    # that "ends 2015-05-31" ends at midnight there.
    utc_offset_minutes: int = 540
    # The inventory view's "expiring soon": lots and terms ending within this time.
    expiring_soon: Duration = msgspec.field(default_factory=lambda: Duration("30d"))


class CrlConfig(msgspec.Struct, **_STRICT):
    # A certificate's partition (serial mod partitions) is chosen at issuance, written
    # into its CRL distribution point, and never changes.
    partitions: int = 16
    # Where partition CRLs are written (and served from, by the CRL HTTP server).
    publish_dir: str = "crl"
    # nextUpdate - thisUpdate; the BR allow at most 10 days.
    validity: Duration = msgspec.field(default_factory=lambda: Duration("7d"))
    # A partition is rebuilt this long after its first unpublished revocation (the BR:
    # within 24 hours), so a burst of revocations costs one build.
    change_delay: Duration = msgspec.field(default_factory=lambda: Duration("60s"))
    # Every partition is rebuilt at least this often, changed or not (the BR: 7 days).
    cadence: Duration = msgspec.field(default_factory=lambda: Duration("1d"))
    # nextUpdate - thisUpdate of delta CRLs (built when a profile has delta_crl).
    delta_validity: Duration = msgspec.field(default_factory=lambda: Duration("1d"))


class OcspConfig(msgspec.Struct, **_STRICT):
    # Pre-sign responses, run the responder, and write the OCSP URL into Authority
    # Information Access. Off: CRLs only (OCSP is optional for TLS since 2024-03-15).
    enabled: bool = True
    # The responder's address: where {ca.base_url}/ocsp (the URL in AIA) is routed.
    listen: str = "127.0.0.1:8080"
    # Responder processes sharing the port (SO_REUSEPORT); 0 = one per CPU.
    processes: int = 0
    # nextUpdate - thisUpdate; the BR allow 8 hours to 10 days.
    validity: Duration = msgspec.field(default_factory=lambda: Duration("4d"))
    # Re-sign once this fraction of the validity has passed (the BR: half-life).
    refresh_fraction: float = 0.5
    # `hanko serve` (its leader) renews an issuer's responder certificate (90 days)
    # once it has less than this left, and the store's envelope carries it everywhere.
    responder_renew_before: Duration = msgspec.field(default_factory=lambda: Duration("30d"))
    # CertID hashes a response is pre-signed for. SHA-1 is what OpenSSL, GnuTLS, nginx
    # and browsers send today; RFC 9919 recommends SHA-256. Each costs a signature.
    cert_id_hashes: list[Literal["sha1", "sha256"]] = msgspec.field(
        default_factory=lambda: ["sha1", "sha256"]
    )
    # Responses re-signed per signer batch, and batches in flight, by the refresher.
    refresh_batch: int = 512
    refresh_parallel: int = 8
    # Answers each responder process keeps ready (about 3.4 KB each; every process has
    # its own cache). Past the bound the cache starts again empty.
    cache_entries: int = 200_000
    # Connections each responder process keeps open; past it the oldest idle one is
    # closed for a new one (and the soft open-file limit is raised to the hard one).
    max_connections: int = 10_000
    # Connections one client address keeps open in each responder process; past it a
    # new one from that address is closed at once (0: no cap of its own). Generous: a
    # CDN's edge or a NAT brings many clients from one address.
    max_connections_per_client: int = 256
    # HTTP limits of the responder: request head, POST body, and timeouts.
    max_header: ByteSize = msgspec.field(default_factory=lambda: ByteSize("8KiB"))
    max_body: ByteSize = msgspec.field(default_factory=lambda: ByteSize("4KiB"))
    idle_timeout: Duration = msgspec.field(default_factory=lambda: Duration("30s"))
    request_timeout: Duration = msgspec.field(default_factory=lambda: Duration("10s"))

    @property
    def responder_processes(self) -> int:
        """`processes` with its default worked out: one per CPU. Two per CPU cut p99 on a
        200,000-certificate store but cost requests/s and p99 on 1,000,000
        (docs/architecture.md, "Responder processes")."""
        return self.processes or os.cpu_count() or 1


class ApiConfig(msgspec.Struct, **_STRICT):
    listen: str = "127.0.0.1:8443"
    # The operator's first admin credential; every other caller has an API key.
    admin_token: SecretRef = msgspec.field(default_factory=SecretRef)
    # TLS: a certificate chain and its key (PEM; the key file 0600). Without them the
    # API only listens on loopback. `client_ca`: clients must present a certificate
    # issued by it (mTLS).
    tls_cert: str | None = None
    tls_key: str | None = None
    client_ca: str | None = None
    # Open connections at most; past it, new ones wait in the kernel's backlog.
    max_connections: int = 1000
    # Open connections from one client address at most; past it a new one is closed at
    # once, so one address cannot hold every slot (0: no cap of its own).
    max_connections_per_client: int = 64
    # A request head at most (431 past it).
    max_header: ByteSize = msgspec.field(default_factory=lambda: ByteSize("16KiB"))
    # Request bodies held by all connections together; past it, reading pauses until
    # requests are answered (their body deadline keeps running).
    max_buffered: ByteSize = msgspec.field(default_factory=lambda: ByteSize("64MiB"))
    # From a connection's start (or its previous answer) to a complete request head,
    # TLS handshake included; also the keep-alive idle time.
    header_timeout: Duration = msgspec.field(default_factory=lambda: Duration("10s"))
    # A request body, whole (408 past it).
    body_timeout: Duration = msgspec.field(default_factory=lambda: Duration("30s"))
    # SIGTERM: new connections are refused at once; requests under way have this long
    # to be answered before the service stops anyway.
    drain_timeout: Duration = msgspec.field(default_factory=lambda: Duration("30s"))

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None


class AcmeConfig(msgspec.Struct, **_STRICT):
    """ACME on the API listener (/acme/directory); it needs `eab_secret`, the secret
    External Account Binding keys are derived from (a 0600 file or the environment)."""

    enabled: bool = True
    eab_secret: SecretRef | None = None
    # The ACME server's external URL (scheme, host and port, as clients reach it):
    # every URL in the directory, orders and nonces' Link is built from it, never from
    # the request's Host. "": https://{api.listen} (http:// without api TLS).
    base_url: str = ""
    order_lifetime: Duration = msgspec.field(default_factory=lambda: Duration("7d"))
    authz_lifetime: Duration = msgspec.field(default_factory=lambda: Duration("7d"))
    # Outstanding replay nonces remembered at most, and how long one stays good.
    nonce_capacity: int = 200_000
    nonce_lifetime: Duration = msgspec.field(default_factory=lambda: Duration("5m"))
    # http-01 fetches from this port; names are looked up through [dns] resolver.
    http01_port: int = 80
    # Moved to [dns] resolver (check-config says so); kept only to say it.
    dns_resolver: str | None = None
    # Let validation connect to loopback and private addresses: for tests only.
    allow_private_targets: bool = False
    validation_timeout: Duration = msgspec.field(default_factory=lambda: Duration("10s"))
    # Requests a second per ACME account, bursts of one second's worth (429 rateLimited
    # with Retry-After beyond); 0: unlimited.
    account_rate: float = 50.0


class DnsConfig(msgspec.Struct, **_STRICT):
    """The one resolver every lookup goes to: ACME dns-01 and http-01 names, CAA,
    domain validation, and the hosts of webhooks and CT logs."""

    # HOST:PORT of a recursive resolver that validates DNSSEC (Unbound, as Boulder
    # uses); its SERVFAIL for a bogus answer is a failure, never permission. "": the
    # system's resolvers (/etc/resolv.conf).
    resolver: str = ""
    # A whole lookup, its retries included.
    timeout: Duration = msgspec.field(default_factory=lambda: Duration("5s"))
    retries: int = 2


class LogConfig(msgspec.Struct, **_STRICT):
    # "json": one object a line (time, level, event, and the request id, key id,
    # serial or account where they apply); "text": for a terminal. Both to stderr.
    format: Literal["json", "text"] = "text"
    level: Literal["debug", "info", "warning", "error"] = "info"
    # One line per API request (method, route, status, duration, key id).
    access_log: bool = True


def _retry_schedule() -> list[Duration]:
    hourly = [Duration(f"{h}h") for h in range(2, 25)]
    return [Duration(d) for d in ("30s", "90s", "5m", "15m", "30m", "1h")] + hourly


class NotifyConfig(msgspec.Struct, **_STRICT):
    """Pushed events to each account's webhook (`hanko licenses webhook set`). Signing
    secrets are derived from `secret` (a 0600 file or the environment); without it no
    webhook can be set."""

    secret: SecretRef | None = None
    # Let webhooks name loopback and private addresses: for tests and private CAs.
    allow_private: bool = False
    # Days before expiry at which a certificate's reminder event goes out.
    expiry_days: list[int] = msgspec.field(default_factory=lambda: [30, 10])
    # Days ahead at which licence units lapsing unused, and a licence term ending, are told.
    license_days: int = 30
    # After the first attempt, when each retry is due; then the event is given up.
    retry_schedule: list[Duration] = msgspec.field(default_factory=_retry_schedule)
    timeout: Duration = msgspec.field(default_factory=lambda: Duration("10s"))
    # How often `hanko serve` looks for reminders due (and once at start).
    sweep_every: Duration = msgspec.field(default_factory=lambda: Duration("1h"))


class CtLogConfig(msgspec.Struct, **_STRICT):
    """One CT log as log lists publish it."""

    url: str  # the log's base URL: {url}/ct/v1/add-pre-chain
    key: str  # base64 DER SubjectPublicKeyInfo
    operator: str
    # A temporal shard takes certificates whose notAfter is in [start, end) (RFC 3339).
    not_after_start: str | None = None
    not_after_end: str | None = None
    # Also submit final certificates, best effort, off the issuance path.
    submit_final: bool = False


class CtConfig(msgspec.Struct, **_STRICT):
    logs: list[CtLogConfig] = msgspec.field(default_factory=list)
    # Let log URLs name loopback and private addresses (tests, a private CA's own logs).
    allow_private: bool = False
    # How long issuance waits for the SCTs it needs, from the first submission.
    deadline: Duration = msgspec.field(default_factory=lambda: Duration("5s"))
    # While too few SCTs came, one more log is asked each `stagger` (one is asked at
    # once whenever one fails).
    stagger: Duration = msgspec.field(default_factory=lambda: Duration("1s"))


class ReplicationConfig(msgspec.Struct, **_STRICT):
    # The Redis primary the status (OCSP responses, CRLs) is replicated to, e.g.
    # "redis://10.0.0.5:6379/0", or "rediss://" for TLS; "" keeps it on this host.
    redis: str = ""
    password: SecretRef | None = None
    # Key prefix, so one Redis can hold several CAs' status.
    prefix: str = "hanko:"
    # Changes per pipelined round trip.
    batch: int = 1000
    # One round trip longer than this counts as Redis being down (retried, with backoff).
    timeout: Duration = msgspec.field(default_factory=lambda: Duration("2s"))


class MetricsConfig(msgspec.Struct, **_STRICT):
    # Prometheus text on {listen}/metrics; "" turns it off. Off loopback it needs TLS
    # (tls_cert, tls_key) and a credential: a bearer `token` or client certificates
    # from `client_ca`.
    listen: str = "127.0.0.1:9464"
    tls_cert: str | None = None
    tls_key: str | None = None
    client_ca: str | None = None
    token: SecretRef | None = None
    # Series per account and licence (balances): who buys how much is the customers'
    # business, so they are off unless asked for.
    per_account: bool = False


class Config(msgspec.Struct, **_STRICT):
    store: StoreConfig
    hsm: HsmConfig
    ca: CaConfig
    api: ApiConfig
    signer: SignerConfig = msgspec.field(default_factory=SignerConfig)
    issuance: IssuanceConfig = msgspec.field(default_factory=IssuanceConfig)
    crl: CrlConfig = msgspec.field(default_factory=CrlConfig)
    licenses: LicenseConfig = msgspec.field(default_factory=LicenseConfig)
    ocsp: OcspConfig = msgspec.field(default_factory=OcspConfig)
    acme: AcmeConfig = msgspec.field(default_factory=AcmeConfig)
    dns: DnsConfig = msgspec.field(default_factory=DnsConfig)
    caa: CaaConfig = msgspec.field(default_factory=CaaConfig)
    dcv: DcvConfig = msgspec.field(default_factory=DcvConfig)
    email: EmailConfig = msgspec.field(default_factory=EmailConfig)
    mpic: MpicConfig = msgspec.field(default_factory=MpicConfig)
    log: LogConfig = msgspec.field(default_factory=LogConfig)
    metrics: MetricsConfig = msgspec.field(default_factory=MetricsConfig)
    notify: NotifyConfig = msgspec.field(default_factory=NotifyConfig)
    ct: CtConfig = msgspec.field(default_factory=CtConfig)
    replication: ReplicationConfig = msgspec.field(default_factory=ReplicationConfig)
    # Filled in by load_config: relative paths in the file are relative to its folder.
    base_dir: str = ""

    def path(self, value: str) -> Path:
        p = Path(value)
        return p if p.is_absolute() else Path(self.base_dir) / p

    def issuers(self) -> list[ResolvedIssuer]:
        """Every issuing CA, defaults worked out (the one-issuer form as a list of one)."""
        ca = self.ca
        legacy = None
        if ca.issuer_cert:
            legacy = IssuerConfig(
                name=LEGACY_NAME,
                cert=ca.issuer_cert,
                key_label=ca.issuer_key_label,
                key_type=ca.key_type,
                profiles=["*"],
                ocsp_responder_cert=ca.ocsp_responder_cert,
                ocsp_responder_key_label=ca.ocsp_responder_key_label,
            )
        return resolve(
            ca.issuers,
            base_url=ca.base_url,
            crl_url=ca.crl_url,
            default_shards=self.crl.partitions,
            legacy=legacy,
            legacy_issuer_url=ca.issuer_url,
        )

    def issuer(self, name: str) -> ResolvedIssuer:
        for found in self.issuers():
            if found.name == name:
                return found
        raise KeyError(name)
