"""Builds runtime components from a Config. `main`-style code calls these; nothing else."""

from __future__ import annotations

from core.config import Config, read_secret
from core.store import GroupCommitWriter, Store
from signer.pool import SignerPool, WorkerSpec


def open_store(cfg: Config, *, readonly: bool = False) -> Store:
    return Store(cfg.path(cfg.store.path), map_size=cfg.store.map_size.bytes, readonly=readonly)


def store_writer(cfg: Config, store: Store) -> GroupCommitWriter:
    return GroupCommitWriter(
        store, max_group=cfg.store.group_commit_max, linger=cfg.store.group_commit_linger.seconds
    )


def worker_spec(cfg: Config, key_labels: tuple[str, ...] | None = None) -> WorkerSpec:
    labels = key_labels or (cfg.ca.issuer_key_label, cfg.ca.ocsp_responder_key_label)
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
    return SignerPool(
        worker_spec(cfg, key_labels),
        workers=s.workers if workers is None else workers,
        batch_max=s.batch_max if batch_max is None else batch_max,
        batch_delay=s.batch_delay.seconds,
        queue_max=s.queue_max,
        batch_timeout=s.batch_timeout.seconds,
        pipeline=pipeline,
    )
