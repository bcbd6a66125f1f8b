"""The checks a type cannot express: ranges, files that must exist, secrets that must be
readable and private. One function per table, each returning readable lines."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from urllib.parse import urlsplit

from core.base.errors import HankoError
from core.base.reasons import ALL_REASON_NAMES
from core.config.issuers import ca_crl_url, list_problems
from core.config.mpic import mpic_problems
from core.config.secret_ref import SecretRef
from core.config.secrets import read_secret
from core.config.settings import LICENSE_KINDS, SYNCHRONOUS_COMMIT, Config
from core.config.url_checks import url_problems as _url_problems

_LABEL = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?$")
_DOMAIN = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$")
KEY_TYPES = ("rsa", "rsa-2048", "rsa-3072", "rsa-4096", "ecdsa-p256", "ecdsa-p384")


def parse_listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected HOST:PORT, got {value!r}")
    return host.strip("[]"), int(port)


def listen_problems(value: str, where: str) -> list[str]:
    try:
        parse_listen(value)
    except ValueError as exc:
        return [f"{where}: {exc}"]
    return []


def _secret_problems(cfg: Config, ref: SecretRef, where: str) -> list[str]:
    if (ref.file is None) == (ref.env is None):
        return [f"{where}: give exactly one of 'file' or 'env'"]
    try:
        read_secret(cfg, ref)
    except HankoError as exc:
        return [f"{where}: {exc.message}"]
    return []


def _file_problems(cfg: Config) -> list[str]:
    problems: list[str] = []
    for where, value in (
        ("ca.root_cert", cfg.ca.root_cert),
        ("hsm.softhsm_conf", cfg.hsm.softhsm_conf),
        ("issuance.blocked_keys_file", cfg.issuance.blocked_keys_file),
    ):
        if value is not None and not cfg.path(value).is_file():
            problems.append(f"{where}: file {cfg.path(value)} does not exist")
    for issuer in cfg.issuers():
        i = issuer.config
        where = "ca" if issuer.legacy else f"ca.issuers ({i.name})"
        for what, value in (("cert", i.cert), ("ocsp_responder_cert", i.ocsp_responder_cert)):
            if value and not cfg.path(value).is_file():
                problems.append(f"{where}.{what}: file {cfg.path(value)} does not exist")
    if not Path(cfg.hsm.module).is_file():
        problems.append(
            f"hsm.module: PKCS#11 module {cfg.hsm.module} does not exist"
            " (for SoftHSM: apt-get install softhsm2)"
        )
    return problems


def _access_problems(cfg: Config) -> list[str]:
    problems = _secret_problems(cfg, cfg.hsm.pin, "hsm.pin")
    problems += _secret_problems(cfg, cfg.api.admin_token, "api.admin_token")
    problems += listen_problems(cfg.api.listen, "api.listen")
    problems += _api_problems(cfg)
    if cfg.acme.eab_secret is not None:
        problems += _secret_problems(cfg, cfg.acme.eab_secret, "acme.eab_secret")
    if not 1_000 <= cfg.acme.nonce_capacity <= 10_000_000:
        problems.append("acme.nonce_capacity: must be between 1000 and 10000000")
    if not 1 <= cfg.acme.http01_port <= 65535:
        problems.append("acme.http01_port: must be a port number")
    if cfg.acme.dns_resolver is not None:
        problems.append(
            "acme.dns_resolver: moved to [dns] resolver (one resolver for ACME, CAA and"
            f' domain validation): write [dns] resolver = "{cfg.acme.dns_resolver}"'
        )
    if cfg.dns.resolver:
        problems += listen_problems(cfg.dns.resolver, "dns.resolver")
    if not 0.1 <= cfg.dns.timeout.seconds <= 60 or not 0 <= cfg.dns.retries <= 5:
        problems.append("dns.timeout: between 100ms and 60s; dns.retries: between 0 and 5")
    return problems + _url_problems(cfg)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _api_problems(cfg: Config) -> list[str]:
    api = cfg.api
    problems: list[str] = []
    if (api.tls_cert is None) != (api.tls_key is None):
        problems.append("api.tls_cert, api.tls_key: give both or neither")
    for where, value in (
        ("api.tls_cert", api.tls_cert),
        ("api.tls_key", api.tls_key),
        ("api.client_ca", api.client_ca),
    ):
        if value is not None and not cfg.path(value).is_file():
            problems.append(f"{where}: file {cfg.path(value)} does not exist")
    if api.tls_key is not None and cfg.path(api.tls_key).is_file():
        mode = cfg.path(api.tls_key).stat().st_mode & 0o777
        if mode & 0o077:
            problems.append(
                f"api.tls_key: {cfg.path(api.tls_key)} is readable by others"
                f" (mode {mode:o}); chmod 600 it"
            )
    if api.client_ca is not None and api.tls_cert is None:
        problems.append("api.client_ca: needs TLS (api.tls_cert and api.tls_key)")
    try:
        host, _ = parse_listen(api.listen)
    except ValueError:
        host = "127.0.0.1"  # reported by listen_problems
    if api.tls_cert is None and not is_loopback(host):
        problems.append(
            f"api.listen: {api.listen} is not a loopback address, and API keys must not"
            " cross a network in cleartext: set api.tls_cert and api.tls_key"
        )
    problems += _api_limit_problems(cfg) + _acme_url_problems(cfg)
    return problems


def _api_limit_problems(cfg: Config) -> list[str]:
    api = cfg.api
    problems: list[str] = []
    if not 1 <= api.max_connections <= 100_000:
        problems.append("api.max_connections: must be between 1 and 100000")
    if not 0 <= api.max_connections_per_client <= 100_000:
        problems.append("api.max_connections_per_client: 0 (no cap) to 100000")
    if not 1 << 10 <= api.max_header.bytes <= 1 << 20:
        problems.append("api.max_header: between 1KiB and 1MiB")
    if api.max_buffered.bytes < 4 << 20:
        problems.append("api.max_buffered: at least 4MiB (one batch request's body)")
    if not 0.1 <= api.header_timeout.seconds <= 600 or not 0.1 <= api.body_timeout.seconds <= 600:
        problems.append("api.header_timeout, api.body_timeout: must be between 100ms and 10m")
    return problems


def _metrics_problems(cfg: Config) -> list[str]:
    """/metrics off loopback: TLS, and a bearer token or client certificates."""
    m = cfg.metrics
    if not m.listen:
        return []
    problems = listen_problems(m.listen, "metrics.listen")
    if (m.tls_cert is None) != (m.tls_key is None):
        problems.append("metrics.tls_cert, metrics.tls_key: give both or neither")
    files = (
        ("metrics.tls_cert", m.tls_cert),
        ("metrics.tls_key", m.tls_key),
        ("metrics.client_ca", m.client_ca),
    )
    for where, value in files:
        if value is not None and not cfg.path(value).is_file():
            problems.append(f"{where}: file {cfg.path(value)} does not exist")
    if m.token is not None:
        problems += _secret_problems(cfg, m.token, "metrics.token")
    if m.client_ca is not None and m.tls_cert is None:
        problems.append("metrics.client_ca: needs TLS (metrics.tls_cert and metrics.tls_key)")
    try:
        host, _ = parse_listen(m.listen)
    except ValueError:
        return problems
    if not is_loopback(host) and (m.tls_cert is None or (m.token is None and m.client_ca is None)):
        problems.append(
            f"metrics.listen: {m.listen} is not a loopback address: /metrics there needs TLS"
            " (metrics.tls_cert, metrics.tls_key) and a credential (metrics.token, a bearer"
            " token from a file, or metrics.client_ca)"
        )
    return problems


def _acme_url_problems(cfg: Config) -> list[str]:
    url = cfg.acme.base_url
    if not url:
        return []
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path.strip("/"):
        return ["acme.base_url: scheme://host[:port] as clients reach the API (no path)"]
    if parts.query or parts.fragment or parts.username:
        return ["acme.base_url: no query, fragment or credentials"]
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        return ["acme.base_url: https:// (ACME needs TLS off loopback, RFC 8555 6.1)"]
    return []


def _signer_problems(cfg: Config) -> list[str]:
    problems: list[str] = []
    sig = cfg.signer
    if sig.workers < 0:
        problems.append("signer.workers: must be 0 (one per CPU) or more")
    if not 1 <= sig.batch_max <= 4096:
        problems.append("signer.batch_max: must be between 1 and 4096")
    if sig.bulk_batch_max and not sig.batch_max <= sig.bulk_batch_max <= 4096:
        problems.append(
            "signer.bulk_batch_max: must be 0 (4 x batch_max) or between signer.batch_max and 4096"
        )
    if sig.queue_max < sig.batch_max:
        problems.append("signer.queue_max: must be at least signer.batch_max")
    elif sig.queue_max < sig.bulk_batch:
        problems.append("signer.queue_max: must be at least signer.bulk_batch_max")
    return problems


def _issuance_problems(cfg: Config) -> list[str]:
    problems: list[str] = []
    iss = cfg.issuance
    if not 0.0 <= iss.lint_sample_rate <= 1.0:
        problems.append("issuance.lint_sample_rate: must be between 0 and 1")
    if not iss.validity_schedule:
        problems.append("issuance.validity_schedule: needs at least one entry")
    if not iss.profiles:
        problems.append("issuance.profiles: define at least one profile")
    for name, prof in iss.profiles.items():
        where = f"issuance.profiles.{name}"
        problems += [
            f"{where}.key_types: unknown key type {kt!r}"
            for kt in prof.key_types
            if kt not in KEY_TYPES
        ]
        problems += [
            f"{where}.revocation_reasons: unknown reason {reason!r}"
            for reason in prof.revocation_reasons
            if reason not in ALL_REASON_NAMES
        ]
        if prof.max_sans < 1:
            problems.append(f"{where}.max_sans: must be at least 1")
        if prof.max_days is not None and not 1 <= prof.max_days <= 398:
            problems.append(f"{where}.max_days: between 1 and 398 (BR 6.3.2)")
        elif prof.max_days and (prof.default_validity_days or 0) > prof.max_days:
            problems.append(f"{where}.default_validity_days: above its max_days")
        if prof.level == "ev" and prof.wildcard:
            problems.append(
                f"{where}.wildcard: an EV profile never issues wildcard names (EV Guidelines"
                " 9.2.2): remove the line or set it to false"
            )
        day = 86400
        windows = [
            ("renewal_window", prof.renewal_window),
            ("name_change_window", prof.name_change_window),
            ("reissue_window", prof.reissue_window),
            ("renewal_issue_window", prof.renewal_issue_window),
        ]
        problems += [
            f"{where}.{key}: must be between 0s and 398d"
            for key, window in windows
            if window is not None and not 0 <= window.seconds <= 398 * day
        ]
        issue_window = prof.renewal_issue_window
        if issue_window is not None and issue_window.seconds > prof.renewal_window.seconds:
            problems.append(
                f"{where}.renewal_issue_window: at most renewal_window (a renewal is issued"
                " within the time it may be asked for)"
            )
        if prof.reissue_limit is not None and prof.reissue_limit < 0:
            problems.append(f"{where}.reissue_limit: must be 0 (no reissue) or more")
        problems += [
            f"{where}.license_kinds: unknown kind {kind!r} (known: {', '.join(LICENSE_KINDS)})"
            for kind in prof.license_kinds
            if kind not in LICENSE_KINDS
        ]
    if not -720 <= cfg.licenses.utc_offset_minutes <= 840:
        problems.append("licenses.utc_offset_minutes: must be between -720 and 840")
    return problems


def _crl_problems(cfg: Config) -> list[str]:
    problems: list[str] = []
    crl = cfg.crl
    if not 1 <= crl.partitions <= 65535:
        problems.append("crl.partitions: must be between 1 and 65535")
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
    return problems


def _ocsp_problems(cfg: Config) -> list[str]:
    oc = cfg.ocsp
    problems = listen_problems(oc.listen, "ocsp.listen")
    if not 8 * 3600 <= oc.validity.seconds <= 10 * 86400:
        problems.append("ocsp.validity: must be between 8h and 10d (BR 4.9.10)")
    if not 0.0 < oc.refresh_fraction <= 0.5:
        problems.append("ocsp.refresh_fraction: must be above 0 and at most 0.5 (the half-life)")
    if not 86400 <= oc.responder_renew_before.seconds <= 60 * 86400:
        # The certificate lives 90 days: renewing with more left would renew it again.
        problems.append("ocsp.responder_renew_before: between 1d and 60d")
    if not oc.cert_id_hashes:
        problems.append("ocsp.cert_id_hashes: name at least one of sha1, sha256")
    if oc.processes < 0:
        problems.append("ocsp.processes: must be 0 (one per CPU) or more")
    if not 1 <= oc.max_connections <= 1_000_000:
        problems.append("ocsp.max_connections: must be between 1 and 1000000")
    if not 0 <= oc.max_connections_per_client <= 1_000_000:
        problems.append("ocsp.max_connections_per_client: 0 (no cap) to 1000000")
    if not 1 <= oc.cache_entries <= 100_000_000:
        problems.append("ocsp.cache_entries: must be between 1 and 100000000")
    if not 1 <= oc.refresh_batch <= 4096 or oc.refresh_parallel < 1:
        problems.append("ocsp.refresh_batch: 1..4096, and ocsp.refresh_parallel at least 1")
    return problems


def redis_url_problems(url: str, table: str) -> list[str]:
    """`{table}.redis`: a redis:// or rediss:// URL, its password kept out of it."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        return [f"{table}.redis: a redis:// or rediss:// URL with a host"]
    if parts.password:
        return [
            f"{table}.redis: no password in the URL; use {table}.password"
            " (a file or an environment variable)"
        ]
    return []


def dsn_problems(dsn: str, where: str) -> list[str]:
    """A PostgreSQL DSN with its password kept out of it."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        parts = conninfo_to_dict(dsn)
    except Exception:
        return [f"{where}: not a PostgreSQL DSN (postgresql://USER@HOST:PORT/DBNAME)"]
    if not dsn:
        return [f"{where}: set it (postgresql://USER@HOST:PORT/DBNAME)"]
    if parts.get("password"):
        table = where.rpartition(".")[0]
        secret = "admin_password" if where.endswith("admin_dsn") else "password"
        return [
            f"{where}: no password in the DSN; use {table}.{secret}"
            " (a file or an environment variable)"
        ]
    return []


def _store_problems(cfg: Config) -> list[str]:
    st = cfg.store
    problems: list[str] = []
    if st.group_commit_max < 1:
        problems.append("store.group_commit_max: must be at least 1")
    if st.max_map_size.bytes < st.map_size.bytes:
        problems.append("store.max_map_size: must be at least store.map_size")
    if st.backend != "postgresql":
        return problems
    problems += dsn_problems(st.dsn, "store.dsn")
    if st.admin_dsn:
        problems += dsn_problems(st.admin_dsn, "store.admin_dsn")
    for where, ref in (
        ("store.password", st.password),
        ("store.admin_password", st.admin_password),
    ):
        if ref is not None:
            problems += _secret_problems(cfg, ref, where)
    if st.synchronous_commit not in SYNCHRONOUS_COMMIT:
        problems.append(
            f"store.synchronous_commit: one of {', '.join(SYNCHRONOUS_COMMIT)}"
            f" (got {st.synchronous_commit!r}: an acknowledged write could be lost)"
        )
    if not 2 <= st.pool_size <= 100:
        problems.append("store.pool_size: between 2 and 100 connections")
    return problems


def _replication_problems(cfg: Config) -> list[str]:
    rep = cfg.replication
    problems: list[str] = []
    if rep.redis:
        problems += redis_url_problems(rep.redis, "replication")
    if rep.password is not None:
        problems += _secret_problems(cfg, rep.password, "replication.password")
    if not 1 <= rep.batch <= 100_000:
        problems.append("replication.batch: between 1 and 100000")
    if not rep.prefix or any(c.isspace() for c in rep.prefix):
        problems.append("replication.prefix: a non-empty prefix without spaces")
    return problems


def _domain_control_problems(cfg: Config) -> list[str]:
    problems: list[str] = []
    caa, dcv, email = cfg.caa, cfg.dcv, cfg.email
    if caa.enabled and not caa.identities:
        problems.append(
            'caa.identities: name the issuer domains CAA records use for this CA (["pki.'
            'example.com"]), or set caa.enabled = false for a private CA'
        )
    problems += [
        f"caa.identities: {ident!r} is not a domain name"
        for ident in caa.identities
        if not _DOMAIN.match(ident)
    ]
    if not 0 <= caa.reuse.seconds <= 8 * 3600:
        problems.append("caa.reuse: between 0s and 8h (BR 3.2.2.8)")
    if not 3600 <= dcv.challenge_lifetime.seconds <= 30 * 86400:
        problems.append("dcv.challenge_lifetime: between 1h and 30d (BR 3.2.2.4.7)")
    if not _LABEL.match(dcv.dns_label) or not dcv.dns_label.startswith("_"):
        problems.append('dcv.dns_label: one DNS label starting with "_" ("_validation-hanko")')
    if not 1 <= dcv.http_port <= 65535 or (dcv.http_port != 80 and not dcv.allow_private_targets):
        problems.append("dcv.http_port: 80 (another port only with allow_private_targets)")
    if not 1 <= dcv.timeout.seconds <= 120:
        problems.append("dcv.timeout: between 1s and 120s")
    if email.host:
        if not email.sender or "@" not in email.sender:
            problems.append("email.sender: the From: address of validation e-mails")
        if email.security == "none" and not is_loopback(email.host):
            problems.append('email.security: "none" only to a loopback server; "starttls" or "tls"')
        if email.password is not None:
            problems += _secret_problems(cfg, email.password, "email.password")
            if not email.user:
                problems.append("email.user: a password needs its user")
        if email.ca_file and not cfg.path(email.ca_file).is_file():
            problems.append(f"email.ca_file: file {cfg.path(email.ca_file)} does not exist")
    return problems


def _issuer_problems(cfg: Config) -> list[str]:
    ca = cfg.ca
    return list_problems(
        [
            ca.issuer_cert,
            ca.issuer_key_label,
            ca.ocsp_responder_cert,
            ca.ocsp_responder_key_label,
            ca.issuer_url,
        ],
        bool(ca.issuers),
        cfg.issuers(),
        set(cfg.issuance.profiles),
        ca_crl_url(ca.base_url, ca.crl_url),
    )


def semantic_problems(cfg: Config) -> list[str]:
    """Every problem a typed Config can still have, in the order of the file's tables."""
    return (
        _issuer_problems(cfg)
        + _file_problems(cfg)
        + _store_problems(cfg)
        + _access_problems(cfg)
        + _metrics_problems(cfg)
        + _signer_problems(cfg)
        + _issuance_problems(cfg)
        + _crl_problems(cfg)
        + _ocsp_problems(cfg)
        + _replication_problems(cfg)
        + _domain_control_problems(cfg)
        + _mpic_problems(cfg)
    )


def _mpic_problems(cfg: Config) -> list[str]:
    import datetime as dt

    listeners = [cfg.api.listen, cfg.ocsp.listen] + (
        [cfg.metrics.listen] if cfg.metrics.listen else []
    )
    loopback_only = all(
        is_loopback(parse_listen(v)[0]) for v in listeners if not listen_problems(v, "")
    )
    m = cfg.mpic
    problems = mpic_problems(m, now=dt.datetime.now(dt.UTC), loopback_only=loopback_only)
    if m.enabled:
        for where, value in (
            ("mpic.client_cert", m.client_cert),
            ("mpic.client_key", m.client_key),
            ("mpic.ca_file", m.ca_file),
        ):
            if not cfg.path(value).is_file():
                problems.append(
                    f"{where}: file {cfg.path(value)} does not exist"
                    " (`hanko perspective init` makes it)"
                )
    return problems
