"""Building and publishing partition CRLs: the edge around crl.encoder.

A full CRL is streamed: the partition's stored entries (already DER, in serial order)
are read in chunks from one LMDB snapshot, hashed with the header and extensions, and
only the digest goes to the HSM. The file is then written from the same chunks, so a
build holds the CRL once in memory and never re-encodes an entry.

Numbers: a full or delta CRL takes its number from a per-partition store counter in a
durable commit before it is signed, so numbers only grow, across restarts and crashes
(a build that dies wastes a number, never repeats one). Files: written to a temporary
name, fsynced, renamed over the previous one; a reader sees the old CRL or the new one,
never half of one. A lock file serializes builders (the updater in `hanko serve` and a
`hanko crl` run by hand), so a file never goes back to an older number.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import hashlib
import os
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import trio

from core.base.clock import Clock, to_epoch
from core.base.errors import PublishError, StoreError
from core.base.files import write_atomically
from core.ca.issuer import IssuerInfo
from core.store import GroupCommitWriter, Store, WriteTxn
from core.store.records import CrlState
from core.store.replication import CRL as CRL_FILE
from crl.encoder import signed_parts, tbs_parts
from crl.schedule import Job, Kind, plan
from crl.streaming import StreamedFile
from signer.api import BatchSigner, Priority

PARTITIONS_COUNTER = "crl:partitions"


@dataclass(frozen=True)
class PublishedCrl:
    partition: int
    kind: Kind
    number: int
    entries: int
    size: int  # bytes of the signed CRL
    path: Path
    this_update: dt.datetime
    # Seconds spent per phase (number, read, hash, sign, write, record): for benchmarks.
    phases: dict[str, float] = field(default_factory=dict)

    def read(self) -> bytes:
        return self.path.read_bytes()


def counter_name(issuer_key_id: bytes, partition: int) -> str:
    """The store counter holding a partition's last CRL number (full and delta share it)."""
    return f"crl:{issuer_key_id.hex()}:{partition}"


def partitions_counter(issuer: IssuerInfo) -> str:
    """The store counter holding the most shards an issuer ever had (the one-issuer
    form's issuer, which publishes at the top of the CRL path, keeps its old name)."""
    return PARTITIONS_COUNTER if not issuer.crl_folder else f"crl:partitions:{issuer.key_id.hex()}"


def file_name(partition: int, kind: Kind) -> str:
    return f"{partition}.crl" if kind is Kind.FULL else f"{partition}-delta.crl"


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
        directory: Path,
        partitions: int,
        validity: dt.timedelta = dt.timedelta(days=7),
        deltas: bool = False,
        delta_validity: dt.timedelta = dt.timedelta(days=1),
    ) -> None:
        if not dt.timedelta(hours=1) <= validity <= dt.timedelta(days=10):
            raise ValueError("CRL validity must be between 1 hour and 10 days (BR 4.9.7)")
        if not dt.timedelta(minutes=1) <= delta_validity <= validity:
            raise ValueError("delta CRL validity must be between 1 minute and the CRL validity")
        self._issuer = issuer
        self._label = issuer_key_label
        self._alg = issuer.key_type.default_algorithm
        self._alg_der = signature_algorithm
        self._signer = signer
        self._store = store
        self._writer = writer
        self._clock = clock
        self._validity = validity
        self._delta_validity = delta_validity
        self.directory = directory
        self._partitions = partitions
        self.deltas = deltas
        self._issuer_name = issuer.certificate.subject.public_bytes()

    @property
    def name(self) -> str:
        """The issuer's name, for logs."""
        return self._issuer.name

    def file_key(self, path: Path) -> str:
        """A published file's name below the publish folder: shard files of issuers
        other than the one-issuer form's are in a folder of the issuer's name."""
        folder = self._issuer.crl_folder
        return f"{folder}/{path.name}" if folder else path.name

    # -- what exists and what is due ------------------------------------------------------

    def partitions(self) -> range:
        """Today's partitions and every one a smaller count left behind: a certificate's
        partition never changes, so its CRL URL must keep answering."""
        with self._store.read() as txn:
            high = txn.counter(partitions_counter(self._issuer))
        return range(max(high, self._partitions))

    def states(self) -> dict[int, CrlState]:
        with self._store.read() as txn:
            return txn.crl_partitions(self._issuer.key_id)

    def due(
        self, *, change_delay: dt.timedelta, cadence: dt.timedelta, force: bool = False
    ) -> list[Job]:
        partitions = self.partitions()
        missing = {p for p in partitions if not (self.directory / file_name(p, Kind.FULL)).exists()}
        missing_delta = (
            {p for p in partitions if not (self.directory / file_name(p, Kind.DELTA)).exists()}
            if self.deltas
            else set()
        )
        return plan(
            self.states(),
            partitions,
            now=to_epoch(self._clock.now()),
            change_delay=int(change_delay.total_seconds()),
            cadence=int(cadence.total_seconds()),
            delta_refresh=int(self._delta_validity.total_seconds()) // 2 if self.deltas else None,
            missing=missing,
            missing_delta=missing_delta,
            force=force,
        )

    async def run(self, jobs: Sequence[Job]) -> list[PublishedCrl]:
        out: list[PublishedCrl] = []
        for job in jobs:
            if job.kind is Kind.FULL:
                out.extend(await self.publish_full(job.partition))
            else:
                out.append(await self.publish_delta(job.partition))
        return out

    # -- building -------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _locked(self) -> AsyncIterator[None]:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise PublishError(f"cannot publish CRLs in {self.directory}: {exc.strerror}") from exc
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EAGAIN, errno.EACCES):
                        raise
                    await trio.sleep(0.05)
            # Builders that died (kill -9) mid-write left their temporary files; with the
            # lock held, nobody is writing one now.
            for stale in self.directory.glob(".*.tmp"):
                stale.unlink(missing_ok=True)
            yield
        finally:
            os.close(fd)  # releases the lock

    async def _take_number(self, partition: int, *, prune: bool) -> int:
        name = counter_name(self._issuer.key_id, partition)
        issuer, count = self._issuer.key_id, self._partitions
        high_name = partitions_counter(self._issuer)

        def op(txn: WriteTxn) -> int:
            txn.raise_counter_to(high_name, count)
            if prune:
                # Entries whose certificate expired before the last full CRL's
                # thisUpdate were on that CRL after their expiry: they may leave now.
                last = txn.crl_state(issuer, partition).full_this_update
                if last:
                    txn.prune_crl(issuer, partition, last)
            return txn.next_counter(name)

        return await self._writer.submit(op)

    def _stream(
        self, partition: int, number: int, now: dt.datetime, path: Path
    ) -> tuple[CrlState, int, StreamedFile] | None:
        """The partition's TBSCertList from one snapshot, written and hashed as it is
        read: (its state, the TBS size, the file waiting for its header), or None when
        the header's size depends on the signature's (a CRL near a DER length
        boundary: built whole instead)."""
        with self._store.read() as txn:
            state = txn.crl_state(self._issuer.key_id, partition)
            head, tail = self._tbs_parts(partition, number, now, state.size)
            tbs_size = len(head) + state.size + len(tail)
            # Signatures are 8 (a tiny ECDSA one) to 512 bytes (RSA-4096) long.
            short, _ = signed_parts(tbs_size, self._alg_der, bytes(8))
            long, _ = signed_parts(tbs_size, self._alg_der, bytes(512))
            if len(short) != len(long):
                return None
            out = StreamedFile(path, len(short), self._alg.hash_name)
            try:
                out.add(head)
                read = 0
                for chunk in txn.crl_entry_chunks(self._issuer.key_id, partition, state.entries):
                    read += len(chunk)
                    out.add(chunk)
                out.add(tail)
                if read != state.size:
                    raise StoreError(
                        f"CRL partition {partition}: entry sizes disagree with its state"
                    )
            except BaseException:
                out.abort()
                raise
        return state, tbs_size, out

    def _tbs_parts(
        self, partition: int, number: int, now: dt.datetime, size: int
    ) -> tuple[bytes, bytes]:
        return tbs_parts(
            signature_algorithm=self._alg_der,
            issuer_name=self._issuer_name,
            this_update=now,
            next_update=now + self._validity,
            entries_size=size,
            crl_number=number,
            authority_key_id=self._issuer.key_id,
            idp_url=self._issuer.crl_url(partition),
            freshest_url=self._issuer.delta_crl_url(partition) if self.deltas else None,
        )

    async def _build_full(
        self, partition: int, number: int, now: dt.datetime, path: Path, phases: dict[str, float]
    ) -> tuple[CrlState, int]:
        """Read, hash and write (overlapped), sign, publish: (the state read, the size)."""
        mark = time.perf_counter()
        streamed = await trio.to_thread.run_sync(self._stream, partition, number, now, path)
        if streamed is None:
            state, chunks = await trio.to_thread.run_sync(self._snapshot, partition)
            _phase(phases, "read", mark)
            head, tail = self._tbs_parts(partition, number, now, state.size)
            size = await self._sign_and_write(
                path, head, chunks, tail, this_update=now, phases=phases
            )
            return state, size
        state, tbs_size, out = streamed
        try:
            digest = await trio.to_thread.run_sync(out.digest)
            mark = _phase(phases, "read_hash_write", mark)
            signature = await self._signer.sign_digest(
                self._label, self._alg, digest, priority=Priority.BULK
            )
            mark = _phase(phases, "sign", mark)
            outer, trailer = signed_parts(tbs_size, self._alg_der, signature)
            await trio.to_thread.run_sync(out.finish, outer, trailer, to_epoch(now))
        except OSError as exc:
            out.abort()
            raise PublishError(f"cannot write {path}: {exc.strerror}") from exc
        except BaseException:
            out.abort()
            raise
        _phase(phases, "sync", mark)
        return state, len(outer) + tbs_size + len(trailer)

    def _snapshot(self, partition: int) -> tuple[CrlState, list[bytes]]:
        with self._store.read() as txn:
            state = txn.crl_state(self._issuer.key_id, partition)
            chunks = list(txn.crl_entry_chunks(self._issuer.key_id, partition, state.entries))
        if sum(map(len, chunks)) != state.size:
            raise StoreError(f"CRL partition {partition}: entry sizes disagree with its state")
        return state, chunks

    def _digest(self, parts: Sequence[bytes]) -> bytes:
        h = hashlib.new(self._alg.hash_name)
        for part in parts:
            h.update(part)
        return h.digest()

    async def _sign_and_write(
        self,
        path: Path,
        head: bytes,
        chunks: list[bytes],
        tail: bytes,
        *,
        this_update: dt.datetime,
        phases: dict[str, float],
    ) -> int:
        tbs_size = len(head) + sum(map(len, chunks)) + len(tail)
        parts = [head, *chunks, tail]
        mark = time.perf_counter()
        digest = await trio.to_thread.run_sync(self._digest, parts)
        mark = _phase(phases, "hash", mark)
        signature = await self._signer.sign_digest(
            self._label, self._alg, digest, priority=Priority.BULK
        )
        mark = _phase(phases, "sign", mark)
        outer, trailer = signed_parts(tbs_size, self._alg_der, signature)
        try:
            await trio.to_thread.run_sync(
                write_atomically, path, [outer, *parts, trailer], to_epoch(this_update)
            )
        except OSError as exc:
            raise PublishError(f"cannot write {path}: {exc.strerror}") from exc
        _phase(phases, "write", mark)
        return len(outer) + tbs_size + len(trailer)

    async def publish_full(self, partition: int) -> list[PublishedCrl]:
        """Build, sign and publish the partition's full CRL (then its delta, which is
        empty against the new base, when deltas are on)."""
        async with self._locked():
            phases: dict[str, float] = {}
            mark = time.perf_counter()
            number = await self._take_number(partition, prune=True)
            mark = _phase(phases, "number", mark)
            now = self._clock.now().replace(microsecond=0)
            path = self.directory / file_name(partition, Kind.FULL)
            state, size = await self._build_full(partition, number, now, path, phases)
            mark = time.perf_counter()
            await self._record(
                partition,
                self.file_key(path),
                trim_through=state.changed_seq,
                full_number=number,
                full_this_update=to_epoch(now),
                full_seq=state.changed_seq,
            )
            _phase(phases, "record", mark)
            out = [
                PublishedCrl(partition, Kind.FULL, number, state.entries, size, path, now, phases)
            ]
            if self.deltas:
                out.append(await self._delta(partition))
            return out

    async def _record(
        self, partition: int, name: str, *, trim_through: int | None = None, **published: int
    ) -> None:
        """Note what was published in the partition's state (and forget the delta log
        that a new full CRL covers); the file `name` goes to status replication."""
        issuer = self._issuer.key_id

        def op(txn: WriteTxn) -> None:
            current = txn.crl_state(issuer, partition)
            txn.put_crl_state(issuer, partition, msgspec.structs.replace(current, **published))
            txn.changed(CRL_FILE, name.encode())
            if trim_through is not None:
                txn.trim_crl_log(issuer, partition, trim_through)

        await self._writer.submit(op)

    async def publish_delta(self, partition: int) -> PublishedCrl:
        """Publish the revocations since the partition's last full CRL (RFC 5280 5.2.4)."""
        async with self._locked():
            return await self._delta(partition)

    async def _delta(self, partition: int) -> PublishedCrl:
        if not self.deltas:
            raise ValueError("delta CRLs are off: no profile has delta_crl")
        issuer = self._issuer.key_id
        with self._store.read() as txn:
            if txn.crl_state(issuer, partition).full_number == 0:
                raise StoreError(f"partition {partition} has no full CRL to be a delta of")
        number = await self._take_number(partition, prune=False)
        now = self._clock.now().replace(microsecond=0)
        with self._store.read() as txn:
            state = txn.crl_state(issuer, partition)
            entries = txn.crl_entries_since(issuer, partition, state.full_seq)
        head, tail = tbs_parts(
            signature_algorithm=self._alg_der,
            issuer_name=self._issuer_name,
            this_update=now,
            next_update=now + self._delta_validity,
            entries_size=sum(map(len, entries)),
            crl_number=number,
            authority_key_id=issuer,
            idp_url=self._issuer.crl_url(partition),
            delta_of=state.full_number,
        )
        path = self.directory / file_name(partition, Kind.DELTA)
        size = await self._sign_and_write(path, head, entries, tail, this_update=now, phases={})

        await self._record(
            partition,
            self.file_key(path),
            delta_number=number,
            delta_this_update=to_epoch(now),
            delta_seq=state.changed_seq,
        )
        return PublishedCrl(partition, Kind.DELTA, number, len(entries), size, path, now)


def _phase(phases: dict[str, float], name: str, since: float) -> float:
    now = time.perf_counter()
    phases[name] = now - since
    return now
