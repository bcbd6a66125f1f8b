"""Builds runtime components from a Config. `main`-style code calls these; nothing else."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Mapping
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import AuthorityInformationAccessOID

from core.acme import ra as acme_ra
from core.acme.validation import Validator
from core.api.server import ListenerSettings
from core.base.clock import Clock
from core.base.errors import ConfigError
from core.ca.root_crl import FILE_NAME as ROOT_CRL_FILE
from core.cmd.wiring_issuers import (
    chains,
    crl_publishers,
    issuer_set,
    issuers,
    load_cert,
    presigners,
)
from core.cmd.wiring_issuers import key_labels as all_key_labels
from core.cmd.wiring_mpic import mpic_corroborator
from core.config import Config, parse_listen, read_secret
from core.config.issuers import ca_crl_url
from core.ct import checks as ct_checks
from core.ct.sct import issuer_key_hash
from core.ct.submit import IssuerChain, Submitter
from core.dns.outbound import Outbound
from core.dns.resolver import DnsSettings, Resolver
from core.issuance.caa_check import CaaChecker
from core.issuance.engine import IssuanceEngine, Observe
from core.issuance.intake_pool import IntakePool
from core.licenses import book
from core.mpic.client import Corroborator
from core.notify.delivery import Notifier
from core.store import GroupCommitWriter, Store
from crl.publisher import CrlPublisher
from crl.updater import CrlUpdater
from ocsp.codec import CertIdHash
from ocsp.presign import Presigner
from ocsp.refresher import OcspRefresher
from ocsp.status.paths import StatusPaths, url_path
from ocsp.status.settings import ServerSettings, http_limits
from ocsp.status.supervisor import ResponderProcesses
from signer.api import BatchSigner
from signer.pool import SignerPool, WorkerSpec


def store_writer(cfg: Config, store: Store) -> GroupCommitWriter:
    return GroupCommitWriter(
        store, max_group=cfg.store.group_commit_max, linger=cfg.store.group_commit_linger.seconds
    )


def worker_spec(cfg: Config, key_labels: tuple[str, ...] | None = None) -> WorkerSpec:
    labels = key_labels or all_key_labels(cfg)
    return WorkerSpec(
        module=cfg.hsm.module,
        token_label=cfg.hsm.token_label,
        pin=read_secret(cfg, cfg.hsm.pin),
        softhsm_conf=str(cfg.path(cfg.hsm.softhsm_conf)) if cfg.hsm.softhsm_conf else None,
        key_labels=labels,
    )


def signer_pool(
    cfg: Config,
    *,
    key_labels: tuple[str, ...] | None = None,
    batch_max: int | None = None,
    pipeline: int = 2,
    workers: int | None = None,
) -> SignerPool:
    s = cfg.signer
    batch_max = s.batch_max if batch_max is None else batch_max
    return SignerPool(
        worker_spec(cfg, key_labels),
        workers=s.workers if workers is None else workers,
        batch_max=batch_max,
        # An unbatched benchmark (batch_max 1) stays unbatched for every priority.
        bulk_batch_max=s.bulk_batch if batch_max == s.batch_max else batch_max,
        batch_delay=s.batch_delay.seconds,
        queue_max=s.queue_max,
        batch_timeout=s.batch_timeout.seconds,
        pipeline=pipeline,
    )


def issuance_engine(
    cfg: Config,
    *,
    signer: BatchSigner,
    store: Store,
    writer: GroupCommitWriter,
    clock: Clock,
    intake: IntakePool | None = None,
    ocsp_presigners: Mapping[bytes, Presigner] | None = None,
    observe: Observe | None = None,
    ct: Submitter | None = None,
    corroborator: Corroborator | None = None,
) -> IssuanceEngine:
    """`ocsp_presigners`: the refresher's, when both run in one process, so a renewed
    responder certificate it adopts is the one issuance and revocation sign under.
    `corroborator`: the process's client of the remote perspectives (one is made
    from [mpic] when none is given and it is enabled)."""
    blocked: set[bytes] = set()
    if cfg.issuance.blocked_keys_file is not None:
        path = cfg.path(cfg.issuance.blocked_keys_file)
        for number, raw in enumerate(path.read_text().splitlines(), 1):
            entry = raw.split("#", 1)[0].strip()
            if not entry:
                continue
            try:
                digest = bytes.fromhex(entry)
            except ValueError:
                digest = b""
            if len(digest) != 32:
                raise ConfigError(
                    [f"issuance.blocked_keys_file: {path}:{number} is not a SHA-256 hex digest"]
                )
            blocked.add(digest)
    return IssuanceEngine(
        config=cfg.issuance,
        issuers=issuer_set(cfg),
        chains=chains(cfg),
        signer=signer,
        store=store,
        writer=writer,
        clock=clock,
        blocked_keys=blocked,
        intake=intake,
        presigners=(ocsp_presigners or presigners(cfg)) if cfg.ocsp.enabled else None,
        licensing=license_settings(cfg) if cfg.licenses.enforce else None,
        observe=observe,
        ct=ct or ct_submitter(cfg),
        caa=caa_checker(cfg, clock, corroborator),
    )


def caa_checker(
    cfg: Config, clock: Clock, corroborator: Corroborator | None = None
) -> CaaChecker | None:
    """The CAA check of every issuance; None only when [caa] enabled = false."""
    if not cfg.caa.enabled:
        return None
    return CaaChecker(
        dns_resolver(cfg),
        identities=cfg.caa.identities,
        clock=clock,
        reuse=cfg.caa.reuse.seconds,
        corroborator=corroborator or mpic_corroborator(cfg, clock),
    )


def ct_submitter(cfg: Config) -> Submitter | None:
    """The CT logs' submitter when [ct] lists logs, else None (no precertificates)."""
    # What check-config would say about [ct] stops the start: certificates issued
    # without the SCTs asked for, or never issued, are both worse than not starting.
    problems = ct_checks.problems(cfg, now=dt.datetime.now(dt.UTC))
    if problems:
        raise ConfigError(problems)
    if not cfg.ct.logs:
        return None
    return Submitter(
        ct_checks.logs(cfg),
        issuers=ct_chains(cfg),
        deadline=cfg.ct.deadline.seconds,
        stagger=cfg.ct.stagger.seconds,
        outbound=Outbound(dns_resolver(cfg), allow_private=cfg.ct.allow_private),
    )


def ct_chains(cfg: Config) -> dict[bytes, IssuerChain]:
    """What the CT logs get after each issuer's (pre)certificates, by its key id."""
    root = x509.load_pem_x509_certificate(cfg.path(cfg.ca.root_cert).read_bytes())
    root_der = root.public_bytes(serialization.Encoding.DER)
    out = {}
    for info in issuers(cfg):
        spki = info.certificate.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        out[info.key_id] = IssuerChain(
            chain=[info.certificate.public_bytes(serialization.Encoding.DER), root_der],
            key_hash=issuer_key_hash(spki),
        )
    return out


def notify_master(cfg: Config) -> bytes | None:
    """The secret webhook signing secrets are derived from, or None (no webhooks)."""
    if cfg.notify.secret is None:
        return None
    return read_secret(cfg, cfg.notify.secret).encode()


def require_notify_master(cfg: Config) -> bytes:
    master = notify_master(cfg)
    if master is None:
        raise ConfigError(["notify.secret: set it to use webhooks (hanko init writes one)"])
    return master


def notifier(
    cfg: Config, *, store: Store, writer: GroupCommitWriter, clock: Clock
) -> Notifier | None:
    master = notify_master(cfg)
    if master is None:
        return None
    n = cfg.notify
    return Notifier(
        store=store,
        writer=writer,
        clock=clock,
        master=master,
        schedule=[int(d.seconds) for d in n.retry_schedule],
        timeout=n.timeout.seconds,
        allow_private=n.allow_private,
        resolver=dns_resolver(cfg),
    )


def eab_master(cfg: Config) -> bytes | None:
    """The secret EAB keys are derived from, or None when `[acme]` names none."""
    if cfg.acme.eab_secret is None:
        return None
    return read_secret(cfg, cfg.acme.eab_secret).encode()


def ra_settings(cfg: Config, master: bytes) -> acme_ra.Settings:
    return acme_ra.Settings(
        eab_secret=master,
        order_lifetime=int(cfg.acme.order_lifetime.seconds),
        authz_lifetime=int(cfg.acme.authz_lifetime.seconds),
    )


def dns_resolver(cfg: Config) -> Resolver:
    d = cfg.dns
    return Resolver(DnsSettings(server=d.resolver, timeout=d.timeout.seconds, retries=d.retries))


def acme_validator(cfg: Config) -> Validator:
    a = cfg.acme
    return Validator(
        resolver=dns_resolver(cfg),
        http_port=a.http01_port,
        allow_private=a.allow_private_targets,
        timeout=a.validation_timeout.seconds,
    )


def license_settings(cfg: Config) -> book.Settings:
    return book.Settings(
        offset=cfg.licenses.utc_offset_minutes,
        expiring_soon=int(cfg.licenses.expiring_soon.seconds),
    )


def crl_publisher(
    cfg: Config,
    *,
    signer: BatchSigner,
    store: Store,
    writer: GroupCommitWriter,
    clock: Clock,
    directory: Path | None = None,
    issuer: str | None = None,
) -> CrlPublisher:
    """One issuer's publisher (the first configured, or the one named)."""
    name = issuer or cfg.issuers()[0].name
    [publisher] = crl_publishers(
        cfg,
        signer=signer,
        store=store,
        writer=writer,
        clock=clock,
        directory=directory,
        names=[name],
    )
    return publisher


def crl_updater(cfg: Config, publishers: CrlPublisher | list[CrlPublisher]) -> CrlUpdater:
    return CrlUpdater(
        publishers,
        change_delay=dt.timedelta(seconds=cfg.crl.change_delay.seconds),
        cadence=dt.timedelta(seconds=cfg.crl.cadence.seconds),
    )


def listener_settings(cfg: Config) -> ListenerSettings:
    api = cfg.api
    host, port = parse_listen(api.listen)

    def file(value: str | None) -> str | None:
        return None if value is None else str(cfg.path(value))

    return ListenerSettings(
        host=host,
        port=port,
        tls_cert=file(api.tls_cert),
        tls_key=file(api.tls_key),
        client_ca=file(api.client_ca),
        max_connections=api.max_connections,
        max_connections_per_client=api.max_connections_per_client,
        header_timeout=api.header_timeout.seconds,
        body_timeout=api.body_timeout.seconds,
        max_header=api.max_header.bytes,
        max_buffered=api.max_buffered.bytes,
    )


def acme_base_url(cfg: Config) -> str:
    """The ACME server's external URL: `[acme] base_url`, else the API listener's."""
    if cfg.acme.base_url:
        return cfg.acme.base_url.rstrip("/")
    host, port = parse_listen(cfg.api.listen)
    shown = f"[{host}]" if ":" in host else host
    return f"{'https' if cfg.api.tls else 'http'}://{shown}:{port}"


def ocsp_refresher(
    cfg: Config,
    *,
    signer: BatchSigner,
    store: Store,
    writer: GroupCommitWriter,
    clock: Clock,
    ocsp_presigners: Mapping[bytes, Presigner] | None = None,
) -> OcspRefresher:
    return OcspRefresher(
        presigners=ocsp_presigners or presigners(cfg),
        signer=signer,
        store=store,
        writer=writer,
        clock=clock,
        batch=cfg.ocsp.refresh_batch,
        parallel=cfg.ocsp.refresh_parallel,
    )


def responder_processes(
    cfg: Config, *, store_path: Path | None = None, listen: str | None = None
) -> ResponderProcesses:
    """The status listener of `hanko serve`: OCSP at /ocsp and the CRL files at /crl/
    (the benchmark points it at its own store and port)."""
    settings = responder_settings(cfg, store_path=store_path, listen=listen)
    return ResponderProcesses(settings, cfg.ocsp.responder_processes)


def status_paths(cfg: Config) -> StatusPaths:
    """Where the status listener serves OCSP, the CRLs and the CA certificates: at the
    paths of the URLs the certificates carry (the root's, from the issuing CAs' AIA)."""
    ca = cfg.ca
    base = ca.base_url.rstrip("/")
    files: dict[str, str] = {}
    for r in cfg.issuers():
        files[url_path(r.issuer_url)] = str(cfg.path(r.config.cert))
        root_url, root_crl_url = _root_urls(load_cert(cfg.path(r.config.cert)))
        if root_url is not None:
            files[url_path(root_url)] = str(cfg.path(ca.root_cert))
        if root_crl_url is not None:
            files[url_path(root_crl_url)] = str(cfg.path(cfg.crl.publish_dir) / ROOT_CRL_FILE)
    return StatusPaths(
        ocsp=url_path(ca.ocsp_url or f"{base}/ocsp"),
        crl=url_path(ca_crl_url(ca.base_url, ca.crl_url)),
        ca_files=files,
    )


def _root_urls(issuing: x509.Certificate) -> tuple[str | None, str | None]:
    """The root's certificate and CRL URLs that the issuing CA's certificate names."""
    ext = issuing.extensions
    cert_url = crl_url = None
    with contextlib.suppress(x509.ExtensionNotFound):
        for desc in ext.get_extension_for_class(x509.AuthorityInformationAccess).value:
            if desc.access_method == AuthorityInformationAccessOID.CA_ISSUERS:
                cert_url = str(desc.access_location.value)
    with contextlib.suppress(x509.ExtensionNotFound):
        for point in ext.get_extension_for_class(x509.CRLDistributionPoints).value:
            for name in point.full_name or ():
                crl_url = str(name.value)
    return cert_url, crl_url


def responder_settings(
    cfg: Config, *, store_path: Path | None = None, listen: str | None = None
) -> ServerSettings:
    oc = cfg.ocsp
    host, port = parse_listen(listen or oc.listen)
    on_pg = cfg.store.backend == "postgresql" and store_path is None
    return ServerSettings(
        store_path="" if on_pg else str(store_path or cfg.path(cfg.store.path)),
        store_dsn=cfg.store.dsn if on_pg else "",
        map_size=cfg.store.map_size.bytes,
        issuer_certs=[str(cfg.path(r.config.cert)) for r in cfg.issuers()],
        host=host,
        port=port,
        hashes=[int(CertIdHash.from_name(h)) for h in oc.cert_id_hashes],
        paths=status_paths(cfg),
        **http_limits(oc),
        crl_dir=str(cfg.path(cfg.crl.publish_dir)),
        # A CDN may keep a CRL as long as a new revocation may wait to be published.
        crl_max_age=max(int(cfg.crl.change_delay.seconds), 1),
    )
