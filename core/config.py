"""Typed configuration: one TOML file decoded into msgspec Structs.

Loading is strict on purpose. Every unknown key is reported with its dotted path (and a
suggestion when it looks like a misspelling), every type error with its path, and then
the semantic checks run (files exist, secrets readable and private). `check_config`
returns all problems; `load_config` raises ConfigError with all of them.
"""

from __future__ import annotations

import difflib
import os
import tomllib
import typing
from pathlib import Path
from typing import Any, Literal

import msgspec

from core.errors import ConfigError, HankoError, SecretError
from core.issuance.messages import ReasonName
from core.issuance.validity import BR_SCHEDULE, ScheduleEntry
from core.secrets import read_secret_env, read_secret_file
from core.units import ByteSize, Duration

# The kinds core/licenses/policy.py implements (named here: config imports no policy).
LICENSE_KINDS = ("pooled", "non_pooled", "domain_bundle", "coupon", "monthly")

_STRICT = {"forbid_unknown_fields": True, "kw_only": True, "frozen": True}


class SecretRef(msgspec.Struct, **_STRICT):
    """Where a secret is read from: exactly one of a file (mode 0600) or an env variable."""

    file: str | None = None
    env: str | None = None


class StoreConfig(msgspec.Struct, **_STRICT):
    path: str = "lmdb"
    # LMDB reserves address space, not disk: the map can be generous.
    map_size: ByteSize = msgspec.field(default_factory=lambda: ByteSize("8GiB"))
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
    issuer_cert: str
    issuer_key_label: str
    ocsp_responder_cert: str
    ocsp_responder_key_label: str
    # Public base URL written into AIA and CRL distribution points.
    base_url: str
    key_type: Literal["ecdsa-p256", "ecdsa-p384", "rsa-2048", "rsa-3072"] = "ecdsa-p256"


class ProfileConfig(msgspec.Struct, **_STRICT):
    """A certificate product: what it may contain and how long it may live."""

    level: Literal["ov", "ev"]
    wildcard: bool = True
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
    # The CRLReasons a revocation of this profile's certificates may give (BR 7.2.2
    # allows these six for subscriber certificates; a profile may narrow them).
    # The license kinds that may pay for this profile's certificates.
    license_kinds: list[str] = msgspec.field(default_factory=lambda: list(LICENSE_KINDS))
    revocation_reasons: list[str] = msgspec.field(
        default_factory=lambda: [
            "unspecified",
            "keyCompromise",
            "affiliationChanged",
            "superseded",
            "cessationOfOperation",
            "privilegeWithdrawn",
        ]
    )


def _default_profiles() -> dict[str, ProfileConfig]:
    return {"ov": ProfileConfig(level="ov"), "ev": ProfileConfig(level="ev", wildcard=False)}


class IssuanceConfig(msgspec.Struct, **_STRICT):
    # CRL partitions; a certificate's partition is chosen at issuance and never changes.
    crl_partitions: int = 16
    # Write the OCSP URL into Authority Information Access.
    ocsp: bool = True
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
    # The responder's address: where {ca.base_url}/ocsp (the URL in AIA) is routed.
    listen: str = "127.0.0.1:8080"
    # Responder processes sharing the port (SO_REUSEPORT); 0 = one per CPU.
    processes: int = 0
    # nextUpdate - thisUpdate; the BR allow 8 hours to 10 days.
    validity: Duration = msgspec.field(default_factory=lambda: Duration("4d"))
    # Re-sign once this fraction of the validity has passed (the BR: half-life).
    refresh_fraction: float = 0.5
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
    rpc_token: SecretRef = msgspec.field(default_factory=SecretRef)
    admin_token: SecretRef = msgspec.field(default_factory=SecretRef)


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
    # Filled in by load_config: relative paths in the file are relative to its folder.
    base_dir: str = ""

    def path(self, value: str) -> Path:
        p = Path(value)
        return p if p.is_absolute() else Path(self.base_dir) / p


def _dec_hook(typ: type, obj: Any) -> Any:
    if typ in (Duration, ByteSize) and isinstance(obj, str):
        return typ(obj)
    # msgspec reports a TypeError from here as a validation error at the field's path.
    raise TypeError(f"expected a string with a unit such as '500ms', got {type(obj).__name__}")


def _struct_type(annotation: Any) -> type[msgspec.Struct] | None:
    """The Struct inside an annotation such as `X`, `X | None`, else None."""
    if isinstance(annotation, type) and issubclass(annotation, msgspec.Struct):
        return annotation
    for arg in typing.get_args(annotation):
        found = _struct_type(arg)
        if found is not None:
            return found
    return None


def _unknown_and_missing(raw: dict[str, Any], cls: type[msgspec.Struct], prefix: str) -> list[str]:
    """Walk the raw TOML against the Struct tree; msgspec alone stops at the first error."""
    problems: list[str] = []
    hints = typing.get_type_hints(cls)
    fields = {f.encode_name: f for f in msgspec.structs.fields(cls)}
    for key, value in raw.items():
        path = f"{prefix}{key}"
        if key not in fields or key == "base_dir":
            close = difflib.get_close_matches(key, [k for k in fields if k != "base_dir"], n=1)
            hint = f" (did you mean '{prefix}{close[0]}'?)" if close else ""
            problems.append(f"{path}: unknown key{hint}")
            continue
        annotation = hints[fields[key].name]
        origin, args = typing.get_origin(annotation), typing.get_args(annotation)
        # Tables of Structs (profiles) and arrays of Structs (the validity schedule).
        items: list[tuple[str, Any]] | None = None
        if origin is dict and len(args) == 2 and isinstance(value, dict):
            element, items = _struct_type(args[1]), [(f".{k}.", v) for k, v in value.items()]
        elif origin is list and args and isinstance(value, list):
            element, items = _struct_type(args[0]), [(f"[{i}].", v) for i, v in enumerate(value)]
        if items is not None and element is not None:
            for suffix, item in items:
                if isinstance(item, dict):
                    problems.extend(_unknown_and_missing(item, element, path + suffix))
            continue
        sub = _struct_type(annotation)
        if sub is not None and isinstance(value, dict):
            problems.extend(_unknown_and_missing(value, sub, f"{path}."))
    for key, f in fields.items():
        if f.required and key not in raw:
            problems.append(f"{prefix}{key}: required key is missing")
    return problems


def _type_errors(raw: dict[str, Any]) -> list[str]:
    """Convert each top-level section on its own so every broken section is reported."""
    problems: list[str] = []
    hints = typing.get_type_hints(Config)
    for f in msgspec.structs.fields(Config):
        if f.encode_name not in raw:
            continue
        try:
            msgspec.convert(raw[f.encode_name], hints[f.name], dec_hook=_dec_hook)
        except msgspec.ValidationError as exc:
            # msgspec says "... - at `$.x.y`"; rewrite into the file's dotted path.
            text = str(exc)
            where = f.encode_name
            if " - at `$" in text:
                text, _, at = text.rpartition(" - at `$")
                where += at.rstrip("`").replace("[", ".").replace("]", "")
            # The walker already reported unknown and missing keys with better hints.
            if not text.startswith(("Object contains unknown field", "Object missing required")):
                problems.append(f"{where}: {text}")
    return problems


def _secret_problems(cfg: Config, ref: SecretRef, where: str) -> list[str]:
    if (ref.file is None) == (ref.env is None):
        return [f"{where}: give exactly one of 'file' or 'env'"]
    try:
        read_secret(cfg, ref)
    except HankoError as exc:
        return [f"{where}: {exc.message}"]
    return []


def _semantic_problems(cfg: Config) -> list[str]:
    problems: list[str] = []
    for where, value in (
        ("ca.root_cert", cfg.ca.root_cert),
        ("ca.issuer_cert", cfg.ca.issuer_cert),
        ("ca.ocsp_responder_cert", cfg.ca.ocsp_responder_cert),
    ):
        if not cfg.path(value).is_file():
            problems.append(f"{where}: file {cfg.path(value)} does not exist")
    if cfg.hsm.softhsm_conf is not None and not cfg.path(cfg.hsm.softhsm_conf).is_file():
        problems.append(f"hsm.softhsm_conf: file {cfg.path(cfg.hsm.softhsm_conf)} does not exist")
    if not Path(cfg.hsm.module).is_file():
        problems.append(
            f"hsm.module: PKCS#11 module {cfg.hsm.module} does not exist"
            " (for SoftHSM: apt-get install softhsm2)"
        )
    problems += _secret_problems(cfg, cfg.hsm.pin, "hsm.pin")
    problems += _secret_problems(cfg, cfg.api.rpc_token, "api.rpc_token")
    problems += _secret_problems(cfg, cfg.api.admin_token, "api.admin_token")
    try:
        parse_listen(cfg.api.listen)
    except ValueError as exc:
        problems.append(f"api.listen: {exc}")
    if not cfg.ca.base_url.startswith("http://"):
        # BR 7.1.2.7.7 / RFC 5280: CRL and OCSP URLs in certificates are plain HTTP.
        problems.append("ca.base_url: must be an http:// URL (CRL and OCSP URLs are not HTTPS)")
    if cfg.signer.workers < 0:
        problems.append("signer.workers: must be 0 (one per CPU) or more")
    if not 1 <= cfg.signer.batch_max <= 4096:
        problems.append("signer.batch_max: must be between 1 and 4096")
    if cfg.signer.bulk_batch_max and not (
        cfg.signer.batch_max <= cfg.signer.bulk_batch_max <= 4096
    ):
        problems.append(
            "signer.bulk_batch_max: must be 0 (4 x batch_max) or between signer.batch_max and 4096"
        )
    if cfg.signer.queue_max < cfg.signer.batch_max:
        problems.append("signer.queue_max: must be at least signer.batch_max")
    elif cfg.signer.queue_max < cfg.signer.bulk_batch:
        problems.append("signer.queue_max: must be at least signer.bulk_batch_max")
    if cfg.store.group_commit_max < 1:
        problems.append("store.group_commit_max: must be at least 1")
    iss = cfg.issuance
    if not 1 <= iss.crl_partitions <= 65535:
        problems.append("issuance.crl_partitions: must be between 1 and 65535")
    if not 0.0 <= iss.lint_sample_rate <= 1.0:
        problems.append("issuance.lint_sample_rate: must be between 0 and 1")
    if not iss.validity_schedule:
        problems.append("issuance.validity_schedule: needs at least one entry")
    if iss.blocked_keys_file is not None and not cfg.path(iss.blocked_keys_file).is_file():
        problems.append(
            f"issuance.blocked_keys_file: file {cfg.path(iss.blocked_keys_file)} does not exist"
        )
    crl = cfg.crl
    if not 3600 <= crl.validity.seconds <= 10 * 86400:
        problems.append("crl.validity: must be between 1h and 10d (BR 4.9.7)")
    if not 0 <= crl.change_delay.seconds <= 86400:
        problems.append("crl.change_delay: must be between 0s and 24h (BR 4.9.7)")
    if not 60 <= crl.cadence.seconds <= min(7 * 86400, crl.validity.seconds / 2):
        problems.append(
            "crl.cadence: must be between 1m and 7d, and at most half of crl.validity"
            " (so a CRL is replaced well before its nextUpdate)"
        )
    if not 2 * crl.change_delay.seconds <= crl.delta_validity.seconds <= crl.validity.seconds:
        problems.append(
            "crl.delta_validity: must be at least twice crl.change_delay and at most crl.validity"
        )
    oc = cfg.ocsp
    try:
        parse_listen(oc.listen)
    except ValueError as exc:
        problems.append(f"ocsp.listen: {exc}")
    if not 8 * 3600 <= oc.validity.seconds <= 10 * 86400:
        problems.append("ocsp.validity: must be between 8h and 10d (BR 4.9.10)")
    if not 0.0 < oc.refresh_fraction <= 0.5:
        problems.append("ocsp.refresh_fraction: must be above 0 and at most 0.5 (the half-life)")
    if not oc.cert_id_hashes:
        problems.append("ocsp.cert_id_hashes: name at least one of sha1, sha256")
    if oc.processes < 0:
        problems.append("ocsp.processes: must be 0 (one per CPU) or more")
    if not 1 <= oc.cache_entries <= 100_000_000:
        problems.append("ocsp.cache_entries: must be between 1 and 100000000")
    if not 1 <= oc.refresh_batch <= 4096 or oc.refresh_parallel < 1:
        problems.append("ocsp.refresh_batch: 1..4096, and ocsp.refresh_parallel at least 1")
    if not iss.profiles:
        problems.append("issuance.profiles: define at least one profile")
    for name, prof in iss.profiles.items():
        for kt in prof.key_types:
            if kt not in ("rsa", "rsa-2048", "rsa-3072", "rsa-4096", "ecdsa-p256", "ecdsa-p384"):
                problems.append(f"issuance.profiles.{name}.key_types: unknown key type {kt!r}")
        for reason in prof.revocation_reasons:
            if reason not in typing.get_args(ReasonName):
                problems.append(
                    f"issuance.profiles.{name}.revocation_reasons: unknown reason {reason!r}"
                )
        if prof.max_sans < 1:
            problems.append(f"issuance.profiles.{name}.max_sans: must be at least 1")
        for kind in prof.license_kinds:
            if kind not in LICENSE_KINDS:
                problems.append(
                    f"issuance.profiles.{name}.license_kinds: unknown kind {kind!r}"
                    f" (known: {', '.join(LICENSE_KINDS)})"
                )
    if not -720 <= cfg.licenses.utc_offset_minutes <= 840:
        problems.append("licenses.utc_offset_minutes: must be between -720 and 840")
    return problems


def parse_listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected HOST:PORT, got {value!r}")
    return host.strip("[]"), int(port)


def check_config(path: Path) -> tuple[Config | None, list[str]]:
    """Every problem in the file, one readable line each; the Config when there are none."""
    try:
        text = path.read_text()
    except OSError as exc:
        return None, [f"{path}: cannot read ({exc.strerror})"]
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return None, [f"{path}: not valid TOML ({exc})"]
    problems = _unknown_and_missing(raw, Config, "") + _type_errors(raw)
    if problems:
        return None, problems
    raw["base_dir"] = str(path.resolve().parent)
    cfg = msgspec.convert(raw, Config, dec_hook=_dec_hook)
    problems = _semantic_problems(cfg)
    return (cfg if not problems else None), problems


def config_path(path: Path | None) -> Path:
    """The file to read: the one given, else $HANKO_CONFIG."""
    if path is not None:
        return path
    env = os.environ.get("HANKO_CONFIG")
    if not env:
        raise ConfigError(["no configuration: pass -c FILE or set HANKO_CONFIG"])
    return Path(env)


def load_config(path: Path | None) -> Config:
    path = config_path(path)
    cfg, problems = check_config(path)
    if cfg is None:
        raise ConfigError(problems)
    return cfg


def read_secret(cfg: Config, ref: SecretRef) -> str:
    if ref.file is not None:
        return read_secret_file(cfg.path(ref.file))
    if ref.env is not None:
        return read_secret_env(ref.env)
    raise SecretError("the secret names neither a file nor an environment variable")
