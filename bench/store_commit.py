"""Durable revocation writes per second: group commit against one commit per write.

Both run in the same process, on the same fresh LMDB environment, on the same disk:
    python -m bench.store_commit [--json] [--single N] [--group N] [--concurrency N]
or  hanko bench store [--json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import trio

from bench.progress import Progress
from bench.report import maybe_write
from core.base.reasons import RevocationReason
from core.store import (
    CertRecord,
    CertStatus,
    GroupCommitWriter,
    LmdbStore,
    Store,
    WriteTxn,
    serial_bytes,
)
from crl.encoder import revoked_entry

# Any well-formed entry: these tests are about the store, the CRL tests about entries.
ENTRY = revoked_entry(1, dt.datetime(2026, 1, 1, tzinfo=dt.UTC), RevocationReason.UNSPECIFIED)

ISSUER = bytes(range(20))


def _seed(store: Store, count: int) -> list[bytes]:
    serials = [serial_bytes(0x4000_0000_0000_0000 + i) for i in range(count)]

    def insert_all(txn: WriteTxn) -> None:
        for i, serial in enumerate(serials):
            txn.insert_cert(
                CertRecord(
                    serial=serial,
                    issuer=ISSUER,
                    status=CertStatus.GOOD,
                    not_before=0,
                    not_after=2_000_000_000 + i,
                    names=[f"www{i}.example.com"],
                    organization="bench",
                    profile="ov",
                    partition=i % 64,
                    der=b"\x30" * 900,
                ),
                at_us=0,
                actor="bench",
            )

    store.write(insert_all)
    return serials


def _revoke(serial: bytes) -> Callable[[WriteTxn], object]:
    def op(txn: WriteTxn) -> object:
        return txn.revoke(
            serial,
            at=1_900_000_000,
            reason=RevocationReason.KEY_COMPROMISE,
            actor="bench",
            entry_der=ENTRY,
        )

    return op


def one_commit_per_write(store: Store, serials: Sequence[bytes]) -> float:
    start = time.perf_counter()
    for serial in serials:
        store.write(_revoke(serial))
    return len(serials) / (time.perf_counter() - start)


def group_commit(store: Store, serials: Sequence[bytes], concurrency: int) -> tuple[float, float]:
    """Revocations/s with `concurrency` callers sharing the writer; and the mean group."""
    result: dict[str, float] = {}

    async def main() -> None:
        writer = GroupCommitWriter(store)
        it: Iterator[bytes] = iter(serials)
        async with trio.open_nursery() as nursery:
            await nursery.start(writer.run)

            async def caller() -> None:
                for serial in it:
                    await writer.submit(_revoke(serial))

            start = time.perf_counter()
            async with trio.open_nursery() as callers:
                for _ in range(concurrency):
                    callers.start_soon(caller)
            result["rate"] = len(serials) / (time.perf_counter() - start)
            result["mean_group"] = writer.statistics().mean_group
            nursery.cancel_scope.cancel()

    trio.run(main)
    return result["rate"], result["mean_group"]


def run(*, single: int, group: int, concurrency: int, directory: Path | None) -> dict[str, float]:
    with tempfile.TemporaryDirectory(dir=directory, prefix="hanko-bench-store-") as tmp:
        store = LmdbStore(Path(tmp), create=True, map_size=4 << 30)
        try:
            progress = Progress("store")
            with progress.phase(f"storing {single + group:,} certificates"):
                serials = _seed(store, single + group)
            with progress.phase(f"{single:,} revocations, one durable commit each"):
                single_rate = one_commit_per_write(store, serials[:single])
            with progress.phase(
                f"{group:,} revocations through group commit ({concurrency} writers)"
            ):
                group_rate, mean_group = group_commit(store, serials[single:], concurrency)
        finally:
            store.close()
    return {
        "one_commit_per_write_per_s": round(single_rate, 1),
        "group_commit_per_s": round(group_rate, 1),
        "group_commit_mean_group": round(mean_group, 1),
        "concurrency": concurrency,
        "ratio": round(group_rate / single_rate, 2),
    }


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="hanko bench store", description=__doc__)
    p.add_argument("--json", action="store_true")
    p.add_argument("--single", type=int, default=2000, help="revocations, one commit each")
    p.add_argument("--group", type=int, default=50000, help="revocations through group commit")
    p.add_argument("--concurrency", type=int, default=512, help="concurrent writers")
    p.add_argument("--dir", type=Path, default=None, help="where the LMDB environment goes")
    p.add_argument("--report", type=Path, default=None, help="write an HTML report here")
    args = p.parse_args(argv)
    res = run(
        single=args.single, group=args.group, concurrency=args.concurrency, directory=args.dir
    )
    maybe_write(args, "store", res)
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        print(f"one commit per write : {res['one_commit_per_write_per_s']:>10.0f} revocations/s")
        print(
            f"group commit ({args.concurrency:>4})  : {res['group_commit_per_s']:>10.0f} "
            f"revocations/s (mean group {res['group_commit_mean_group']:.0f})"
        )
        print(f"ratio                : {res['ratio']:>10.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
