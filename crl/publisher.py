"""Building and publishing partition CRLs: the edge around crl.encoder.

A partition's CRL is its stored entries (already DER, already in serial order), a
header, and a signature from the batched signer. The CRL number is taken from a store
counter in a durable commit before the CRL is signed, so numbers only grow, across
restarts and crashes. Files are written to a temporary name, fsynced, and renamed over
the previous one: a reader sees the old CRL or the new one, never half of one.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

from core.clock import Clock, from_epoch, to_epoch
from core.errors import SignerError
from core.issuance.profile import IssuerInfo
from core.store import GroupCommitWriter, Store, WriteTxn
from crl.encoder import revoked_entry, tbs_cert_list
from signer.pool import Priority
from signer.splice import BatchSigner, assemble

# An entry stays on the CRL for this long after its certificate expires, so that it
# appears on at least one CRL published after the expiry (the BR publish at least every
# 7 days; this is longer).
KEEP_AFTER_EXPIRY = dt.timedelta(days=8)


@dataclass(frozen=True)
class PublishedCrl:
    partition: int
    number: int
    entries: int
    path: Path | None
    der: bytes


def counter_name(issuer: IssuerInfo, partition: int) -> str:
    return f"crl:{issuer.key_id.hex()}:{partition}"


class CrlPublisher:
    def __init__(
        self,
        *,
        issuer: IssuerInfo,
        issuer_key_label: str,
        signature_algorithm: bytes,
        signer: BatchSigner,
        store: Store,
        writer: GroupCommitWriter,
        clock: Clock,
        validity: dt.timedelta = dt.timedelta(days=7),
    ) -> None:
        if not dt.timedelta(hours=1) <= validity <= dt.timedelta(days=10):
            raise ValueError("CRL validity must be between 1 hour and 10 days (BR 4.9.7)")
        self._issuer = issuer
        self._label = issuer_key_label
        self._alg = issuer.key_type.default_algorithm
        self._alg_der = signature_algorithm
        self._signer = signer
        self._store = store
        self._writer = writer
        self._clock = clock
        self._validity = validity
        self._issuer_name = issuer.certificate.subject.public_bytes()

    def _entries(self, partition: int, now: dt.datetime) -> tuple[bytes, int]:
        keep_from = to_epoch(now - KEEP_AFTER_EXPIRY)
        parts = []
        with self._store.read() as txn:
            for rev in txn.iter_revocations(self._issuer.key_id, partition):
                if rev.not_after >= keep_from:
                    # Revocations stored before entries were kept as DER are encoded now.
                    parts.append(
                        rev.entry_der
                        or revoked_entry(
                            int.from_bytes(rev.serial, "big"),
                            from_epoch(rev.revoked_at),
                            rev.reason,
                        )
                    )
        return b"".join(parts), len(parts)

    async def build(self, partition: int) -> PublishedCrl:
        now = self._clock.now().replace(microsecond=0)
        entries, count = self._entries(partition, now)
        name = counter_name(self._issuer, partition)

        def take_number(txn: WriteTxn) -> int:
            return txn.next_counter(name)

        number = await self._writer.submit(take_number)
        tbs = tbs_cert_list(
            signature_algorithm=self._alg_der,
            issuer_name=self._issuer_name,
            this_update=now,
            next_update=now + self._validity,
            entries=entries,
            crl_number=number,
            authority_key_id=self._issuer.key_id,
            idp_url=self._issuer.crl_url(partition),
        )
        [signature] = await self._signer.sign_many(
            [(self._label, self._alg, tbs)], priority=Priority.BULK
        )
        if isinstance(signature, SignerError):
            raise signature
        return PublishedCrl(partition, number, count, None, assemble(tbs, self._alg_der, signature))

    async def publish(self, partition: int, directory: Path) -> PublishedCrl:
        crl = await self.build(partition)
        path = directory / f"{partition}.crl"
        write_atomically(path, crl.der)
        return PublishedCrl(crl.partition, crl.number, crl.entries, path, crl.der)


def write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
