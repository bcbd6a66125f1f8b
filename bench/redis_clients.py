"""`hanko bench redis-clients`: which Redis client for which side of hanko.

The CA side of status replication runs on trio: it writes pre-signed responses to a
Redis primary in pipelined batches after each LMDB commit. Two ways to do that from
trio: coredis, which runs on anyio and so natively on trio, and redis-py's sync client
in a worker thread (`trio.to_thread.run_sync`, one batch per hop). The responder
processes run on uvloop, where redis-py's asyncio client is the natural one; what
matters there is whether a request may look Redis up at all (one GET a request) or
must answer from a local copy kept fresh by change notifications (a batched MGET per
change).

One redis-server on loopback (no persistence) started here; each client measured
`--rounds` times, interleaved; medians reported with the spread.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import trio

from bench.progress import Progress
from bench.report import maybe_write

PROGRESS = Progress("redis-clients")
VALUE = os.urandom(400)  # about one pre-signed response with its two CertID hashes


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def redis_server(replica_of: int | None = None) -> Iterator[int]:
    """A throwaway redis-server on loopback, its port; `replica_of`: a read-only
    replica of the one on that port."""
    if shutil.which("redis-server") is None:
        raise SystemExit(
            "redis-server is not installed: run scripts/dev.sh setup (apt-get install redis-server)"
        )
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="hanko-bench-redis-") as tmp:
        proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                tmp,
                *(("--replicaof", "127.0.0.1", str(replica_of)) if replica_of else ()),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise SystemExit("redis-server did not start") from None
                    time.sleep(0.05)
            yield port
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def _keys(n: int) -> list[bytes]:
    return [b"bench:ocsp:%032x" % i for i in range(n)]


def redis_py_in_thread(port: int, keys: list[bytes], batch: int) -> tuple[float, float]:
    import redis

    client = redis.Redis(port=port)

    def write(chunk: list[bytes]) -> None:
        pipe = client.pipeline(transaction=False)
        for key in chunk:
            pipe.set(key, VALUE, px=86_400_000)
        pipe.execute()

    async def main() -> tuple[float, float]:
        cpu, wall = time.process_time(), time.perf_counter()
        for i in range(0, len(keys), batch):
            await trio.to_thread.run_sync(write, keys[i : i + batch])
        return time.perf_counter() - wall, time.process_time() - cpu

    try:
        return trio.run(main)
    finally:
        client.close()


def coredis_on_trio(port: int, keys: list[bytes], batch: int) -> tuple[float, float]:
    import coredis

    async def main() -> tuple[float, float]:
        client = coredis.Redis(port=port)
        cpu, wall = time.process_time(), time.perf_counter()
        async with client:
            for i in range(0, len(keys), batch):
                async with client.pipeline(transaction=False) as pipe:
                    for key in keys[i : i + batch]:
                        pipe.set(key, VALUE, px=86_400_000)
        return time.perf_counter() - wall, time.process_time() - cpu

    return trio.run(main)


def asyncio_reads(port: int, keys: list[bytes], batch: int) -> dict[str, tuple[float, float]]:
    """redis-py asyncio on uvloop: a GET per key, then MGET of `batch` keys."""
    import redis.asyncio as aredis
    import uvloop

    async def main() -> dict[str, tuple[float, float]]:
        client = aredis.Redis(port=port)
        out = {}
        singles = keys[: max(1, len(keys) // 4)]
        cpu, wall = time.process_time(), time.perf_counter()
        for key in singles:
            await client.get(key)
        out["get"] = (
            len(singles) / (time.perf_counter() - wall),
            (time.process_time() - cpu) / len(singles),
        )
        cpu, wall = time.process_time(), time.perf_counter()
        for i in range(0, len(keys), batch):
            await client.mget(keys[i : i + batch])
        out["mget"] = (
            len(keys) / (time.perf_counter() - wall),
            (time.process_time() - cpu) / len(keys),
        )
        await client.aclose()
        return out

    return uvloop.run(main())


def _summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def run(*, keys: int, batch: int, rounds: int) -> dict[str, Any]:
    names = _keys(keys)
    writers: dict[str, Callable[[int, list[bytes], int], tuple[float, float]]] = {
        "redis_py_worker_thread": redis_py_in_thread,
        "coredis_trio": coredis_on_trio,
    }
    rates: dict[str, list[float]] = {name: [] for name in writers}
    cpu: dict[str, list[float]] = {name: [] for name in writers}
    reads: dict[str, list[tuple[float, float]]] = {"get": [], "mget": []}
    missing: list[str] = []
    with redis_server() as port:
        bar = PROGRESS.bar(f"{rounds} rounds of {keys:,} pipelined SETs per client", rounds)
        for _ in range(rounds):
            for name, write in writers.items():
                try:
                    wall, spent = write(port, names, batch)
                except ImportError:
                    if name not in missing:
                        missing.append(name)
                    continue
                rates[name].append(keys / wall)
                cpu[name].append(spent / keys * 1e6)
            for kind, measured in asyncio_reads(port, names, batch).items():
                reads[kind].append(measured)
            bar.advance()
        bar.close()
    report: dict[str, Any] = {"keys": keys, "batch": batch, "rounds": rounds, "missing": missing}
    for name in writers:
        if rates[name]:
            report[name] = {
                "sets_per_s": _summary(rates[name]),
                "cpu_us_per_set": _summary(cpu[name]),
            }
    for kind, figures in reads.items():
        report[f"asyncio_{kind}"] = {
            "keys_per_s": _summary([f[0] for f in figures]),
            "cpu_us_per_key": _summary([f[1] * 1e6 for f in figures]),
        }
    return report


def run_from_cli(args: argparse.Namespace) -> int:
    report = run(keys=args.keys, batch=args.batch, rounds=args.rounds)
    maybe_write(args, "redis-clients", report)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(
        f"Redis clients: {report['keys']:,} keys of {len(VALUE)} bytes, batches of"
        f" {report['batch']}, {report['rounds']} rounds (median, min-max)"
    )
    for name, label in (
        ("redis_py_worker_thread", "trio: redis-py sync client in a worker thread"),
        ("coredis_trio", "trio: coredis (anyio)"),
    ):
        if name not in report:
            print(f"  {label}: not installed")
            continue
        r, c = report[name]["sets_per_s"], report[name]["cpu_us_per_set"]
        print(
            f"  {label}: {r['median']:,.0f} SET/s ({r['min']:,.0f}-{r['max']:,.0f}),"
            f" {c['median']:.1f} µs CPU a SET"
        )
    for kind, label in (("get", "a GET per key"), ("mget", f"MGET of {report['batch']}")):
        r, c = report[f"asyncio_{kind}"]["keys_per_s"], report[f"asyncio_{kind}"]["cpu_us_per_key"]
        print(
            f"  uvloop: redis-py asyncio, {label}: {r['median']:,.0f} keys/s,"
            f" {c['median']:.1f} µs CPU a key"
        )
    return 0
