"""The Redis part of `hanko bench ocsp`: the same store replicated to a Redis primary
(the replicator of `hanko serve`, rebuilding an empty Redis from LMDB), a read-only
replica following it, and a responder host answering from its copy of the replica as
`hanko responder` runs it (its copier and responder processes). Then, as for the
LMDB-backed responder in the same run: every sampled answer checked, revocation to
served through the replica, and wrk with the same request mix.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import redis
import trio

from bench import ocsp_peers as peers
from bench.redis_clients import redis_server
from bench.revocation_poll import revoke_and_poll, summary
from bench.wrk import run_wrk
from core.base.clock import SystemClock
from core.base.errors import HankoError
from core.cmd.wiring import issuance_engine, signer_pool, store_writer
from core.cmd.wiring_replication import replication_profile
from core.config import Config
from core.replication.replicator import Replicator
from core.store import Store
from ocsp.status.host import ResponderHost
from ocsp.status.redis_layout import Layout
from ocsp.status.settings import CopierSettings, ServerSettings, http_limits

Requests = list[tuple[bytes, bytes, bytes]]


def responder_host(
    cfg: Config, port: int, replica: int, copy: Path, processes: int
) -> ResponderHost:
    """A responder host on `port` from the Redis at `replica`, its copy in `copy`."""
    return ResponderHost(
        CopierSettings(
            redis=f"redis://127.0.0.1:{replica}/0", path=str(copy), prefix=cfg.replication.prefix
        ),
        ServerSettings(host="127.0.0.1", port=port, copy_path=str(copy), **http_limits(cfg.ocsp)),
        processes,
    )


async def _ready(url: str) -> bool:
    """/readyz answers 200."""
    try:
        async with httpx.AsyncClient() as c:
            return (await c.get(f"{url}/readyz", timeout=5)).status_code == 200
    except httpx.TransportError:
        return False


async def _until(check: Any, seconds: float, what: str) -> None:
    deadline = trio.current_time() + seconds
    while not await check():
        if trio.current_time() > deadline:
            raise HankoError(f"bench ocsp: {what} not within {seconds:g} s")
        await trio.sleep(0.05)


async def _phase(
    cfg: Config,
    store: Store,
    *,
    primary: int,
    replica: int,
    reqs: Requests,
    revoke: Requests,
    scripts: dict[str, Path],
    get_target: Callable[[bytes, bytes], str],
    connections: int,
    seconds: float,
    crl_dir: Path,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    report: dict[str, Any] = {}
    pool = signer_pool(cfg)
    writer = store_writer(cfg, store)
    layout = Layout(cfg.replication.prefix)
    replica_client = redis.Redis(host="127.0.0.1", port=replica, socket_timeout=10)
    async with trio.open_nursery() as nursery:
        await nursery.start(writer.run)
        await nursery.start(pool.run)
        replicator = Replicator(
            store=store,
            writer=writer,
            prefix=cfg.replication.prefix,
            crl_dir=crl_dir,
            client=lambda: redis.Redis(host="127.0.0.1", port=primary, socket_timeout=30),
            profile=replication_profile(cfg),
            batch=cfg.replication.batch,
        )
        progress("replicating the store to an empty Redis primary (a rebuild from LMDB)")
        started = time.perf_counter()
        await nursery.start(replicator.run)

        async def caught_up() -> bool:
            stats = replicator.statistics()
            return stats.resyncs > 0 and stats.lag == 0

        await _until(caught_up, 600, "the rebuild of Redis")
        report["resync_seconds"] = round(time.perf_counter() - started, 2)
        cursor = replicator.statistics().cursor

        async def replica_has_it() -> bool:
            raw = await trio.to_thread.run_sync(replica_client.get, layout.seq)
            return raw is not None and int(raw) >= cursor

        await _until(replica_has_it, 120, "the replica's copy")
        report["replica_synced_seconds"] = round(time.perf_counter() - started, 2)

        port = peers.free_port()
        host = responder_host(
            cfg, port, replica, crl_dir.parent / "copy", cfg.ocsp.responder_processes
        )
        started = time.perf_counter()
        await nursery.start(host.run)
        report["responder_start_seconds"] = round(time.perf_counter() - started, 2)
        url = f"http://127.0.0.1:{port}"
        await _until(functools.partial(_ready, url), 600, "the responder host's first load")
        report["responder_ready_seconds"] = round(time.perf_counter() - started, 2)
        await trio.to_thread.run_sync(peers.check_all, url, reqs, get_target)
        await trio.to_thread.run_sync(peers.check_all, url, reqs, lambda s, d: "/ocsp", "POST")

        engine = issuance_engine(cfg, signer=pool, store=store, writer=writer, clock=SystemClock())
        progress(f"revocation to served through the replica ({len(revoke)} revocations)")
        report["revocation_to_served"] = summary(await revoke_and_poll(engine, revoke, port))
        load: dict[str, dict[str, float]] = {}
        for name in ("replica GET", "replica POST"):
            progress(f"wrk -c{connections} for {seconds:g} s against {name}")
            load[name] = await trio.to_thread.run_sync(
                functools.partial(
                    run_wrk, url, scripts[name], connections=connections, seconds=seconds
                )
            )
        report["load"] = load
        report["replicator"] = {
            "batches": replicator.statistics().batches,
            "changes": replicator.statistics().changes,
        }
        nursery.cancel_scope.cancel()
    replica_client.close()
    return report


def run(
    cfg: Config,
    store: Store,
    *,
    reqs: Requests,
    revoke: Requests,
    scripts: dict[str, Path],
    get_target: Callable[[bytes, bytes], str],
    connections: int,
    seconds: float,
    workdir: Path,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    """`scripts`: wrk's Lua scripts by run name ("replica GET", "replica POST");
    `get_target`: the GET path of a request; `revoke`: the requests of certificates to
    revoke (not among `reqs`)."""
    crl_dir = workdir / "replica-crl"
    crl_dir.mkdir()
    with redis_server() as primary, redis_server(replica_of=primary) as replica:
        return trio.run(
            functools.partial(
                _phase,
                cfg,
                store,
                primary=primary,
                replica=replica,
                reqs=reqs,
                revoke=revoke,
                scripts=scripts,
                get_target=get_target,
                connections=connections,
                seconds=seconds,
                crl_dir=crl_dir,
                progress=progress,
            )
        )
