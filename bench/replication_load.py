"""`hanko bench replication`: how long `hanko replication resync` takes to rebuild a
Redis from a store of `--certs` certificates, and how fast the replicator drains a
feed of changes (a refresher's burst of re-signed responses).

The store is synthetic: one OCSP record per certificate, with two pre-signed
responses of the size hanko's are (ECDSA issuing CA, SHA-1 and SHA-256 CertIDs), and
one responder envelope; no signatures are made (the timing is the walk, the encoding
and Redis). Redis is a redis-server on loopback started here, without persistence.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

from bench.progress import Progress
from bench.redis_clients import redis_server
from bench.report import maybe_write
from core.replication.replicator import Replicator
from core.store import (
    GroupCommitWriter,
    LmdbStore,
    OcspEnvelope,
    OcspRecord,
    Store,
    WriteTxn,
    serial_bytes,
)
from ocsp.status.redis_layout import Profile

PROGRESS = Progress("replication")
RESPONSE = 230  # bytes of one pre-signed ResponseData and signature (ECDSA)
CHUNK = 20_000


def _record(now: int) -> OcspRecord:
    return OcspRecord(
        this_update=now,
        next_update=now + 4 * 86400,
        refresh_at=now + 2 * 86400,
        signed={1: os.urandom(RESPONSE), 2: os.urandom(RESPONSE + 12)},
        envelope=OcspEnvelope(key_hash=b"\x11" * 20, encoded=os.urandom(600), since=now),
    )


def build(store: Store, certs: int, *, first: int = 1) -> None:
    now = int(time.time())
    bar = PROGRESS.bar(f"a store of {certs:,} certificates' responses", certs)
    for start in range(first, first + certs, CHUNK):
        stop = min(start + CHUNK, first + certs)

        def op(txn: WriteTxn, start: int = start, stop: int = stop) -> None:
            txn.put_ocsp_many((serial_bytes(n), _record(now)) for n in range(start, stop))

        store.write(op)
        bar.advance(stop - start)
    bar.close()


def run(*, certs: int, changes: int) -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory(prefix="hanko-bench-replication-") as tmp,
        redis_server() as port,
    ):
        import redis

        store = LmdbStore(Path(tmp) / "store", create=True, map_size=4 << 30)
        try:
            build(store, certs)
            crl_dir = Path(tmp) / "crl"
            crl_dir.mkdir()
            client = redis.Redis(port=port, socket_timeout=30)
            out: dict[str, Any] = {"certs": certs, "changes": changes}

            async def main() -> None:
                writer = GroupCommitWriter(store)
                rep = Replicator(
                    store=store,
                    writer=writer,
                    client=lambda: redis.Redis(port=port, socket_timeout=30),
                    prefix="hanko:",
                    crl_dir=crl_dir,
                    profile=Profile(issuer=b"", hashes=[1, 2], ocsp_path="/ocsp", crl_path="/crl"),
                )
                async with trio.open_nursery() as nursery:
                    await nursery.start(writer.run)
                    PROGRESS.say(f"resync of {certs:,} certificates")
                    started = time.perf_counter()
                    keys = await rep.resync_now()
                    took = time.perf_counter() - started
                    out["resync_seconds"] = round(took, 2)
                    out["resync_keys"] = keys
                    out["resync_keys_per_s"] = round(keys / took)
                    out["redis_used_memory_bytes"] = client.info("memory")["used_memory"]
                    # A burst of re-signed responses, then the replicator drains it.
                    await trio.to_thread.run_sync(_burst, store, changes)
                    PROGRESS.say(f"replicating a burst of {changes:,} changes")
                    started = time.perf_counter()
                    nursery.start_soon(rep.run)
                    while rep.statistics().lag:
                        await trio.sleep(0.01)
                    took = time.perf_counter() - started
                    out["burst_seconds"] = round(took, 2)
                    out["burst_changes_per_s"] = round(changes / took)
                    nursery.cancel_scope.cancel()

            trio.run(main)
        finally:
            store.close()
    return out


def _burst(store: Store, changes: int) -> None:
    now = int(time.time())
    for start in range(1, changes + 1, CHUNK):
        stop = min(start + CHUNK, changes + 1)

        def op(txn: WriteTxn, start: int = start, stop: int = stop) -> None:
            txn.put_ocsp_many((serial_bytes(n), _record(now)) for n in range(start, stop))

        store.write(op)


def run_from_cli(args: argparse.Namespace) -> int:
    report = run(certs=args.certs, changes=args.changes)
    maybe_write(args, "replication", report)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(
        f"resync of {report['certs']:,} certificates: {report['resync_seconds']} s"
        f" ({report['resync_keys_per_s']:,} keys/s), Redis then uses"
        f" {report['redis_used_memory_bytes'] / 2**20:,.0f} MiB\n"
        f"a burst of {report['changes']:,} re-signed responses replicated in"
        f" {report['burst_seconds']} s ({report['burst_changes_per_s']:,} changes/s)"
    )
    return 0
