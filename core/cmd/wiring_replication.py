"""Builds the status replication's components from a Config: the Redis clients, the
replicator, and the CA profile responder hosts serve (core/cmd/wiring.py builds the
rest)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from core.ca.root_crl import FILE_NAME as ROOT_CRL_FILE
from core.cmd.wiring import responder_settings
from core.config import Config, read_secret
from core.replication.replicator import Replicator
from core.store import GroupCommitWriter, Store
from ocsp.status.redis_layout import Profile


def redis_client_factory(cfg: Config) -> Callable[[], Any]:
    """A maker of redis-py (sync) clients for `[replication] redis`."""
    import redis

    rep = cfg.replication
    password = read_secret(cfg, rep.password) if rep.password is not None else None
    timeout = rep.timeout.seconds

    def make() -> Any:
        return redis.Redis.from_url(
            rep.redis,
            password=password,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
        )

    return make


def replicator(cfg: Config, *, store: Store, writer: GroupCommitWriter) -> Replicator | None:
    """The status replicator when `[replication] redis` names a Redis, else None."""
    if not cfg.replication.redis:
        return None
    return Replicator(
        store=store,
        writer=writer,
        client=redis_client_factory(cfg),
        prefix=cfg.replication.prefix,
        crl_dir=cfg.path(cfg.crl.publish_dir),
        profile=replication_profile(cfg),
        batch=cfg.replication.batch,
    )


def replication_profile(cfg: Config) -> Profile:
    """What responder hosts serve, and where: as the status listener here does."""
    settings = responder_settings(cfg)
    root_crl = str(cfg.path(cfg.crl.publish_dir) / ROOT_CRL_FILE)
    files: dict[str, bytes] = {}
    root_crl_path = ""
    for url_path_, file in settings.paths.ca_files.items():
        if file == root_crl:
            root_crl_path = url_path_
            continue
        data = Path(file).read_bytes()
        cert = (
            x509.load_pem_x509_certificate(data)
            if data.lstrip().startswith(b"-----")
            else x509.load_der_x509_certificate(data)
        )
        files[url_path_] = cert.public_bytes(serialization.Encoding.DER)
    every = [
        x509.load_pem_x509_certificate(cfg.path(r.config.cert).read_bytes()).public_bytes(
            serialization.Encoding.DER
        )
        for r in cfg.issuers()
    ]
    return Profile(
        issuer=every[0],
        issuers=every,
        hashes=settings.hashes,
        ocsp_path=settings.paths.ocsp,
        crl_path=settings.paths.crl,
        ca_files=files,
        root_crl_path=root_crl_path,
        crl_max_age=settings.crl_max_age,
    )
