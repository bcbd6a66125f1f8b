"""`hanko bench scale --certs N`: status at internet scale, one figure per part a CA of
N certificates runs on, in one run on this machine:

1. the CA's store of N certificates (bench/scale_build.py): build rate, size on disk;
2. Redis: the store rebuilt into an empty primary by the replicator (`resync`), a
   read-only replica's full sync, Redis's memory;
3. a responder host (`hanko responder`'s copier and responder processes) on the
   replica: first start to ready (the whole load), its copy on disk, then a restart
   to ready (answering from its copy, caught up from the change log);
4. wrk GET at the host's responders and at nginx serving the same bytes as files, and
   each responder process's memory after it;
5. the refresh capacity the signer leaves: responses the HSM pool signs a day against
   what N certificates need at the configured validity and refresh point;
6. every CRL shard of the issuer built in full: seconds and bytes per shard.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import redis
import trio

from bench import ocsp_peers as peers
from bench.ocsp_load import _hanko_get, _requests, _scripts
from bench.ocsp_replica import responder_host
from bench.progress import Progress
from bench.redis_clients import redis_server
from bench.report import maybe_write
from bench.scale_build import CHUNK, Plan, processes, signed_chunks, write_chunk
from bench.signer_load import raw_ceiling
from bench.wrk import run_wrk
from core.base.clock import SystemClock
from core.base.errors import HankoError
from core.cmd.wiring import signer_pool, store_writer, worker_spec
from core.cmd.wiring_issuers import crl_publishers
from core.cmd.wiring_replication import replication_profile
from core.config import Config, load_config
from core.replication.replicator import Replicator
from core.store import LmdbStore
from ocsp.status.redis_layout import Layout

PROGRESS = Progress("scale")
REPLICA_UP_TO = 2_000_000
MIB = 1 << 20


def _say(text: str) -> None:
    PROGRESS.say(text)


def _du(path: Path) -> int:
    """Bytes a folder's files take on disk (allocated blocks: LMDB files are sparse)."""
    return sum(f.stat().st_blocks * 512 for f in path.rglob("*") if f.is_file())


def _memory(pid: int) -> dict[str, float]:
    """A process's resident memory in MiB: all of it (VmRSS), private (RssAnon), and
    file pages (RssFile: the copy's pages in the page cache, the same physical pages in
    every process of the host; the kernel maps up to 16 cached neighbours of each page
    a process touches, so this is many times the pages it reads)."""
    out: dict[str, float] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile", "RssShmem"):
                out[key] = round(int(value.split()[0]) / 1024, 1)
    except OSError:
        pass
    return out


async def _until_ready(url: str, seconds: float) -> float:
    started = time.perf_counter()
    async with httpx.AsyncClient() as c:
        while time.perf_counter() - started < seconds:
            try:
                if (await c.get(f"{url}/readyz", timeout=5)).status_code == 200:
                    return time.perf_counter() - started
            except httpx.TransportError:
                pass
            await trio.sleep(0.05)
    raise HankoError(f"bench scale: {url} not ready within {seconds:g} s")


def build(
    cfg: Config, store: LmdbStore, plan: Plan, n: int, sample: int
) -> tuple[dict[str, Any], list[bytes]]:
    """The store; a uniform sample of its serials."""
    rng = random.Random(plan.seed)
    picked: list[bytes] = []
    seen = 0
    envelope = plan.envelope()
    started = time.perf_counter()
    bar = PROGRESS.bar(f"signing and storing {n:,} certificates", n)
    for chunk in signed_chunks(plan, n, processes()):
        for serial in write_chunk(store, plan, chunk, envelope):
            seen += 1
            if len(picked) < sample:
                picked.append(serial)
            elif (j := rng.randrange(seen)) < sample:
                picked[j] = serial
        bar.advance(len(chunk))
    bar.close()
    seconds = time.perf_counter() - started
    size = _du(store.path)
    return {
        "seconds": round(seconds, 1),
        "certs_per_s": round(n / seconds),
        "signing": f"software {plan.key_type.value} key in {processes()} processes; its"
        " delegated responder certificate signed by the issuer's key in the HSM",
        "cert_id_hashes": [h.name.lower() for h in plan.hashes],
        "store_bytes": size,
        "store_bytes_per_cert": round(size / n),
    }, picked


async def _redis_and_host(
    cfg: Config,
    store: LmdbStore,
    workdir: Path,
    *,
    primary: int,
    replica: int,
    reqs: list[tuple[bytes, bytes, bytes]],
    connections: int,
    seconds: float,
) -> dict[str, Any]:
    report: dict[str, Any] = {}
    writer = store_writer(cfg, store)
    layout = Layout(cfg.replication.prefix)
    async with trio.open_nursery() as nursery:
        await nursery.start(writer.run)
        replicator = Replicator(
            store=store,
            writer=writer,
            prefix=cfg.replication.prefix,
            crl_dir=workdir / "crl",
            client=lambda: redis.Redis(host="127.0.0.1", port=primary, socket_timeout=60),
            profile=replication_profile(cfg),
            batch=cfg.replication.batch,
        )
        _say("rebuilding an empty Redis primary from the store (resync)")
        started = time.perf_counter()
        written = await replicator.resync_now()
        report["redis_resync_seconds"] = round(time.perf_counter() - started, 1)
        report["redis_keys_written"] = written
        rc = redis.Redis(host="127.0.0.1", port=primary, socket_timeout=60)
        used = int(rc.info("memory")["used_memory"])
        report["redis_memory_bytes"] = used
        report["redis_bytes_per_cert"] = round(used / max(1, written))
        replica_client = redis.Redis(host="127.0.0.1", port=replica, socket_timeout=60)
        want = rc.get(layout.seq)
        _say("waiting for the replica's full sync")
        while replica_client.get(layout.seq) != want:
            await trio.sleep(0.2)
        report["replica_synced_seconds"] = round(time.perf_counter() - started, 1)

        copy = workdir / "responder-copy"
        port = peers.free_port()
        url = f"http://127.0.0.1:{port}"
        count = cfg.ocsp.responder_processes
        for phase in ("first_start", "restart"):
            _say(f"responder host: {phase.replace('_', ' ')}")
            host = responder_host(cfg, port, replica, copy, count)
            with trio.CancelScope() as scope:
                started = time.perf_counter()
                async with trio.open_nursery() as inner:
                    await inner.start(host.run)
                    listening = time.perf_counter() - started
                    ready = listening + await _until_ready(url, 3600)
                    report[phase] = {
                        "listening_seconds": round(listening, 2),
                        "ready_seconds": round(ready, 2),
                    }
                    if phase == "first_start":
                        report["copy_bytes"] = _du(copy)
                        report["copy_bytes_per_cert"] = round(
                            report["copy_bytes"] / len_or_1(store)
                        )
                        await trio.to_thread.run_sync(peers.check_all, url, reqs, _hanko_get)
                        report["memory_after_start_mib"] = [_memory(p) for p in host.pids()]
                    else:
                        lua_get, _ = _scripts(workdir, reqs)
                        _say(f"wrk -c{connections} for {seconds:g} s against the responder host")
                        report["hanko GET"] = await trio.to_thread.run_sync(
                            functools.partial(
                                run_wrk, url, lua_get, connections=connections, seconds=seconds
                            )
                        )
                        report["memory_after_load_mib"] = [_memory(p) for p in host.pids()]
                    scope.cancel()
        nursery.cancel_scope.cancel()
    return report


def len_or_1(store: LmdbStore) -> int:
    return max(1, store.stat()["certs"])


async def _crls(cfg: Config, store: LmdbStore, out: Path, shards: int) -> dict[str, Any]:
    pool = signer_pool(cfg, workers=1)
    writer = store_writer(cfg, store)
    async with trio.open_nursery() as nursery:
        await nursery.start(writer.run)
        await nursery.start(pool.run)
        [publisher] = crl_publishers(
            cfg,
            signer=pool,
            store=store,
            writer=writer,
            clock=SystemClock(),
            directory=out,
            names=[cfg.issuers()[0].config.name],
        )
        rows, again = [], []
        for p in range(shards):
            started = time.perf_counter()
            crl = (await publisher.publish_full(p))[0]
            rows.append((time.perf_counter() - started, crl.entries, crl.size))
        # The first build after the bulk load pays for bringing the entries' pages in;
        # the updater's builds find them there.
        for p in range(shards):
            started = time.perf_counter()
            await publisher.publish_full(p)
            again.append(time.perf_counter() - started)
        nursery.cancel_scope.cancel()
    return {
        "shards": shards,
        "entries": sum(r[1] for r in rows),
        "seconds_all_first": round(sum(r[0] for r in rows), 2),
        "seconds_all": round(sum(again), 2),
        "seconds_per_shard_max": round(max(again), 3),
        "bytes_per_shard_mean": round(sum(r[2] for r in rows) / shards),
        "bytes_per_shard_max": max(r[2] for r in rows),
    }


def run(
    cfg: Config,
    *,
    certs: int,
    revoked: float,
    sample: int,
    seconds: float,
    connections: int,
    workdir: Path,
) -> dict[str, Any]:
    plan = Plan(cfg, revoked=revoked, now=int(time.time()), seed=5019)
    report: dict[str, Any] = {"certificates": certs, "revoked_fraction": revoked}
    # First, on an idle machine: the HSM pool's ceiling does not depend on N, and the
    # token's processes start more reliably before the store and Redis take the memory.
    _say("the signer's ceiling for the responder key")
    chosen = cfg.issuers()[0].config
    ceiling = raw_ceiling(
        worker_spec(cfg),
        chosen.ocsp_responder_key_label,
        plan.key_type.default_algorithm,
        cfg.signer.workers or os.cpu_count() or 1,
        5.0,
    )
    most = max(cfg.store.max_map_size.bytes, 256 << 30)
    store = LmdbStore(
        workdir / "lmdb", map_size=cfg.store.map_size.bytes, max_map_size=most, create=True
    )
    try:
        report["store"], picked = build(cfg, store, plan, certs, sample)
        issuer = plan.presigner().encoder.issuer
        reqs = _requests(store, picked, issuer)
        (workdir / "crl").mkdir()
        with contextlib.ExitStack() as stack:
            primary = stack.enter_context(redis_server())
            # A replica holds all of Redis again: on one machine past a few million
            # certificates the host follows the primary itself (the copier reads either).
            replica = (
                stack.enter_context(redis_server(replica_of=primary))
                if certs <= REPLICA_UP_TO
                else primary
            )
            report["host_follows"] = "replica" if replica != primary else "primary"
            report["status"] = trio.run(
                functools.partial(
                    _redis_and_host,
                    cfg,
                    store,
                    workdir,
                    primary=primary,
                    replica=replica,
                    reqs=reqs,
                    connections=connections,
                    seconds=seconds,
                )
            )
        _say(f"wrk -c{connections} for {seconds:g} s against nginx (GET of the same bytes)")
        nginx = peers.nginx(workdir, reqs, connections, seconds)["nginx GET"]
        report["status"]["nginx GET"] = nginx
        report["status"]["hanko_get_over_nginx_get"] = round(
            report["status"]["hanko GET"]["requests_per_s"] / nginx["requests_per_s"], 2
        )
        per_day_needed = certs * len(plan.hashes) * 86400 / (plan.validity * plan.fraction)
        report["refresh"] = {
            "signer_signatures_per_s": round(ceiling),
            "signatures_per_day": round(ceiling * 86400),
            "needed_per_day": round(per_day_needed),
            "headroom": round(ceiling * 86400 / per_day_needed, 2),
            "validity_hours": round(plan.validity / 3600, 1),
            "refresh_fraction": plan.fraction,
        }
        _say(f"building every CRL shard ({plan.shards}) in full")
        report["crl"] = trio.run(_crls, cfg, store, workdir / "crl", plan.shards)
    finally:
        store.close()
    report["settings"] = {
        "connections": connections,
        "seconds_per_run": seconds,
        "distinct_requests": len(reqs),
        "responder_processes": cfg.ocsp.responder_processes,
        "chunk": CHUNK,
    }
    return report


def run_from_cli(args: argparse.Namespace) -> int:
    for tool in ("wrk", "nginx", "redis-server"):
        if shutil.which(tool) is None:
            print(
                f"hanko bench scale: {tool} is not installed: run scripts/dev.sh setup",
                file=sys.stderr,
            )
            return 1
    cfg = load_config(args.config)
    with tempfile.TemporaryDirectory(prefix="hanko-bench-scale-") as tmp:
        report = run(
            cfg,
            certs=args.certs,
            revoked=args.revoked,
            sample=args.sample,
            seconds=args.seconds,
            connections=args.connections,
            workdir=Path(tmp),
        )
    maybe_write(args, "scale", report)
    print(json.dumps(report, indent=2) if args.json else _text(report))
    return 0


def _text(r: dict[str, Any]) -> str:
    s, st, rf, crl = r["store"], r["status"], r["refresh"], r["crl"]
    mem = st["memory_after_load_mib"][1:]
    return "\n".join(
        [
            f"store: {r['certificates']:,} certificates built in {s['seconds']} s"
            f" ({s['certs_per_s']:,}/s), {s['store_bytes'] / MIB:,.0f} MiB"
            f" ({s['store_bytes_per_cert']} B per certificate)",
            f"redis: resync {st['redis_resync_seconds']} s,"
            f" {st['redis_memory_bytes'] / MIB:,.0f} MiB"
            f" ({st['redis_bytes_per_cert']} B per certificate); replica synced at"
            f" {st['replica_synced_seconds']} s",
            f"responder host: first start ready in {st['first_start']['ready_seconds']} s, restart"
            f" ready in {st['restart']['ready_seconds']} s; copy {st['copy_bytes'] / MIB:,.0f} MiB",
            f"responder processes after load: {', '.join(str(m.get('VmRSS')) for m in mem)} MiB"
            f" RSS, of it {', '.join(str(m.get('RssAnon')) for m in mem)} MiB private",
            f"GET: hanko {st['hanko GET']['requests_per_s']:,.0f}/s, nginx"
            f" {st['nginx GET']['requests_per_s']:,.0f}/s: {st['hanko_get_over_nginx_get']}x",
            f"refresh: the signer signs {rf['signatures_per_day']:,} a day, N needs"
            f" {rf['needed_per_day']:,}: {rf['headroom']}x",
            f"CRL: {crl['shards']} shards, {crl['entries']:,} entries in {crl['seconds_all']} s,"
            f" {crl['bytes_per_shard_mean'] / MIB:.1f} MiB per shard",
        ]
    )
