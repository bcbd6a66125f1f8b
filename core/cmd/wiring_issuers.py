"""The issuing CAs as the runtime needs them, built from `[[ca.issuers]]` (or the
one-issuer form): their IssuerInfo, pre-signers, CRL publishers and the CRL URL list."""

from __future__ import annotations

import datetime as dt
import functools
from pathlib import Path
from typing import Any

from cryptography import x509

from core.base.clock import to_epoch
from core.ca.issuer import CaUrls, IssuerInfo, issuer_info
from core.ca.issuers import IssuerSet
from core.config import Config
from core.config.issuers import ResolvedIssuer, profiles_of
from core.store import GroupCommitWriter, Store
from core.store.configured import open_store
from core.store.keys import LAST_EXPIRY_PREFIX
from crl.publisher import CrlPublisher, partitions_counter
from crl.urls import url_list
from ocsp.codec import CertIdHash
from ocsp.presign import Presigner
from ocsp.response_codec import ResponseEncoder
from signer.algorithms import KeyType
from signer.api import BatchSigner
from signer.splice import signature_algorithm_der


@functools.lru_cache(maxsize=8)
def _load_cert(path: Path, mtime_ns: int) -> x509.Certificate:
    # `mtime_ns` is only part of the cache key: a replaced file is read again.
    del mtime_ns
    return x509.load_pem_x509_certificate(path.read_bytes())


def load_cert(path: Path) -> x509.Certificate:
    return _load_cert(path, path.stat().st_mtime_ns)


def ca_urls(cfg: Config, resolved: ResolvedIssuer) -> CaUrls:
    ca = cfg.ca
    base = ca.base_url.rstrip("/")
    return CaUrls(
        ocsp=ca.ocsp_url or f"{base}/ocsp", crl=resolved.crl_url, issuer=resolved.issuer_url
    )


def _epoch(when: dt.datetime | None) -> int | None:
    return to_epoch(when) if when is not None else None


def info_of(cfg: Config, resolved: ResolvedIssuer) -> IssuerInfo:
    i = resolved.config
    return issuer_info(
        load_cert(cfg.path(i.cert)),
        KeyType(i.key_type),
        ca_urls(cfg, resolved),
        ocsp=cfg.ocsp.enabled,
        name=i.name,
        key_label=i.key_label,
        profiles=profiles_of(i, list(cfg.issuance.profiles)),
        shards=resolved.crl_shards,
        crl_folder=resolved.crl_folder,
        not_before=_epoch(i.not_before),
        not_after=_epoch(i.not_after),
        retired=i.retired_at is not None,
    )


def issuers(cfg: Config) -> list[IssuerInfo]:
    """Every configured issuer, active or not, in the file's order."""
    return [info_of(cfg, r) for r in cfg.issuers()]


def issuer_set(cfg: Config) -> IssuerSet:
    return IssuerSet(issuers(cfg))


def chains(cfg: Config) -> dict[bytes, str]:
    """What follows each issuer's certificates in a chain (PEM): the issuing CA. The
    root is in the clients' trust stores; sending it only costs every handshake."""
    return {info_of(cfg, r).key_id: cfg.path(r.config.cert).read_text() for r in cfg.issuers()}


def key_labels(cfg: Config) -> tuple[str, ...]:
    """Every HSM key the signer workers open: each issuer's and its responder's."""
    labels: list[str] = []
    for r in cfg.issuers():
        for label in (r.config.key_label, r.config.ocsp_responder_key_label):
            if label and label not in labels:
                labels.append(label)
    return tuple(labels)


def response_encoder(cfg: Config, resolved: ResolvedIssuer) -> ResponseEncoder:
    i = resolved.config
    responder = load_cert(cfg.path(i.ocsp_responder_cert))
    alg_der, _ = signature_algorithm_der(KeyType(i.key_type))
    return ResponseEncoder(
        issuer=load_cert(cfg.path(i.cert)), responder=responder, signature_algorithm=alg_der
    )


def presigner_of(cfg: Config, resolved: ResolvedIssuer) -> Presigner:
    oc = cfg.ocsp
    return Presigner(
        response_encoder(cfg, resolved),
        key_label=resolved.config.ocsp_responder_key_label,
        # the responder key is made of its issuer's key type
        algorithm=KeyType(resolved.config.key_type).default_algorithm,
        hashes=[CertIdHash.from_name(h) for h in oc.cert_id_hashes],
        validity=dt.timedelta(seconds=oc.validity.seconds),
        refresh_fraction=oc.refresh_fraction,
    )


def presigners(cfg: Config) -> dict[bytes, Presigner]:
    """Each issuer's pre-signer, by the issuer's key id."""
    return {info_of(cfg, r).key_id: presigner_of(cfg, r) for r in cfg.issuers()}


def crl_publishers(
    cfg: Config,
    *,
    signer: BatchSigner,
    store: Store,
    writer: GroupCommitWriter,
    clock: Any,
    directory: Path | None = None,
    names: list[str] | None = None,
) -> list[CrlPublisher]:
    """One publisher per issuer (those in `names` when given), each writing its shards
    in its own folder below the publish folder."""
    top = directory or cfg.path(cfg.crl.publish_dir)
    out = []
    for r in cfg.issuers():
        if names is not None and r.name not in names:
            continue
        info = info_of(cfg, r)
        alg_der, _ = signature_algorithm_der(info.key_type)
        out.append(
            CrlPublisher(
                issuer=info,
                issuer_key_label=info.key_label,
                signature_algorithm=alg_der,
                signer=signer,
                store=store,
                writer=writer,
                clock=clock,
                directory=top / r.crl_folder if r.crl_folder else top,
                partitions=r.crl_shards,
                validity=dt.timedelta(seconds=cfg.crl.validity.seconds),
                deltas=any(p.delta_crl for p in cfg.issuance.profiles.values()),
                delta_validity=dt.timedelta(seconds=cfg.crl.delta_validity.seconds),
            )
        )
    return out


def crl_url_list(cfg: Config, store: Store | None = None) -> dict[str, Any]:
    """Every CRL URL of every issuer that may still have a valid certificate (CCADB's
    JSON array of partitioned CRLs), and each issuer's own list."""
    infos = issuers(cfg)
    own = store is None and (
        cfg.store.backend == "postgresql" or cfg.path(cfg.store.path).joinpath("data.mdb").exists()
    )
    reader = open_store(cfg, readonly=True) if own else store
    highs: dict[bytes, int] = {}
    last: dict[bytes, int] = {}
    try:
        if reader is not None:
            with reader.read() as txn:
                for info in infos:
                    highs[info.key_id] = txn.counter(partitions_counter(info))
                    last[info.key_id] = txn.counter(LAST_EXPIRY_PREFIX + info.key_id.hex())
    finally:
        if own and reader is not None:
            reader.close()
    now = to_epoch(dt.datetime.now(dt.UTC))
    listed = []
    for info in infos:
        # A retired issuer whose last certificate has expired publishes nothing more
        # that anyone needs; one with no recorded expiry may predate the counter.
        if info.retired and 0 < last.get(info.key_id, 0) < now:
            continue
        shards = range(max(highs.get(info.key_id, 0), info.shards))
        listed.append(
            {"name": info.name}
            | url_list(
                info.certificate.subject.rfc4514_string(),
                info.key_id,
                [info.crl_url(p) for p in shards],
            )
        )
    return {"crl_urls": [u for entry in listed for u in entry["crl_urls"]], "issuers": listed}
