"""`hanko bench ocsp`: the responder against the servers an operator would otherwise run.

1. Loads a throwaway store (its own LMDB folder) with N certificates, 10% revoked, every
   one due for a response.
2. Refresh: the OCSP refresher signs them all through the real signer pool (SoftHSM);
   its responses/s are compared with the signer's raw ceiling for the responder key,
   measured in the same run before the refresh and after each of its parts.
3. Revocation to served: revokes a few certificates through the issuance engine and
   polls the running responder until it answers "revoked".
4. Load: wrk drives the same request mix (random serials of the store, GET and POST) at
   hanko's responder processes, then `cfssl ocspserve` loaded with the same responses,
   then nginx serving the same responses as static files (GET only: nginx does not
   serve static files to POST), one after the other.
5. Through Redis (bench/ocsp_replica.py): the store replicated to a Redis primary and
   a replica, a responder host answering from its copy as `hanko responder` runs it,
   revocation to served through it, and the same wrk runs; its requests/s are given
   as ratios to the LMDB-backed responder's.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import functools
import json
import os
import random
import shutil
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import trio
from cryptography import x509

from bench import ocsp_peers as peers
from bench import ocsp_replica
from bench.cert_records import insert_bench_cert
from bench.progress import Progress
from bench.report import maybe_write
from bench.revocation_poll import revoke_and_poll
from bench.revocation_poll import summary as latency_summary
from bench.signer_load import raw_ceiling
from bench.wrk import run_wrk
from core.base.clock import FixedClock, SystemClock
from core.base.errors import HankoError
from core.cmd.wiring import (
    issuance_engine,
    ocsp_refresher,
    responder_processes,
    signer_pool,
    store_writer,
    worker_spec,
)
from core.config import Config, load_config
from core.issuance.engine import IssuanceEngine
from core.store import CertStatus, LmdbStore, Store, WriteTxn
from ocsp.codec import CertIdHash
from signer.algorithms import KeyType

# The refresh runs in this many parts, the signer ceiling measured between them.
SEGMENTS = 4
CHUNK = 20_000


PROGRESS = Progress("ocsp")


def _progress(text: str) -> None:
    PROGRESS.say(text)


def load_store(
    store: Store,
    issuer_key_id: bytes,
    n: int,
    revoked: float,
    seed: int,
    *,
    now: int,
    segments: int = 1,
) -> list[bytes]:
    """N certificate records (no certificate bytes: the responder never reads them),
    a fraction revoked, all due for their first response: the k-th of `segments` equal
    parts at `segment_due(now, segments, k)`, so the refresh can be run a part at a time."""
    rng = random.Random(seed)
    serials: list[bytes] = []
    bar = PROGRESS.bar(f"storing {n:,} certificates", n) if n >= 10 * CHUNK else None
    for start in range(0, n, CHUNK):
        batch = []
        for _ in range(min(CHUNK, n - start)):
            serial = (rng.getrandbits(127) | (1 << 126)).to_bytes(16, "big")
            batch.append((serial, rng.random() < revoked))
        serials += [s for s, _ in batch]

        def op(txn: WriteTxn, batch: list[tuple[bytes, bool]] = batch, start: int = start) -> None:
            for i, (serial, is_revoked) in enumerate(batch, start):
                insert_bench_cert(
                    txn,
                    serial,
                    issuer=issuer_key_id,
                    now=now,
                    partition=serial[-1] % 16,
                    revoked=is_revoked,
                )
                txn.schedule_ocsp(serial, segment_due(now, segments, i * segments // n))

        store.write(op)
        if bar is not None:
            bar.advance(len(batch))
    if bar is not None:
        bar.close()
    return serials


def segment_due(now: int, segments: int, k: int) -> int:
    """When part k of a store loaded at `now` falls due: the parts a second apart, the
    last one now."""
    return now - segments + 1 + k


def _requests(
    store: Store, sample: list[bytes], issuer: x509.Certificate
) -> list[tuple[bytes, bytes, bytes]]:
    """(serial, OCSP request DER, stored SHA-1 response DER) for each sampled serial."""
    from core.base.der import encode_unsigned_integer, sequence, tlv
    from ocsp.codec import IssuerHashes
    from ocsp.response_codec import Envelopes

    name_hash, key_hash = IssuerHashes(issuer).by_hash[CertIdHash.SHA1]
    alg = CertIdHash.SHA1.algorithm_der
    out = []
    with store.read() as txn:
        envelopes = Envelopes(txn.get_ocsp_envelope)
        for serial in sample:
            cert_id = sequence(
                alg
                + tlv(4, name_hash)
                + tlv(4, key_hash)
                + encode_unsigned_integer(int.from_bytes(serial, "big"))
            )
            der = sequence(sequence(sequence(sequence(cert_id))))
            rec = txn.get_ocsp(serial)
            signed = rec.signed.get(int(CertIdHash.SHA1)) if rec is not None else None
            response = envelopes.response(signed) if signed is not None else None
            if response is None:
                raise HankoError(f"no response for {serial.hex()} after the refresh")
            out.append((serial, der, response))
    return out


def _hanko_get(serial: bytes, der: bytes) -> str:
    return "/ocsp/" + urllib.parse.quote(base64.b64encode(der).decode(), safe="")


async def _refresh_all(
    cfg: Config,
    store: Store,
    n: int,
    *,
    loaded_at: int,
    segments: int = 1,
    ceiling: Callable[[], float] | None = None,
) -> dict[str, Any]:
    """Re-sign all `n` responses of a store `load_store` filled at `loaded_at` (its
    `now`), one part at a time, and measure `ceiling()` (signatures/s, blocking) before
    the first part and after each.

    The signer's raw ceiling on this VM has moved by a third within two minutes, so a
    ceiling taken only before and after a two-minute refresh says little about the
    ceiling during it. Each part is compared with the mean of the ceilings on either
    side of it; `of_ceiling` is the refresh's signatures over what the ceiling would
    have signed in the same seconds."""
    pool = signer_pool(cfg)
    writer = store_writer(cfg, store)
    per_cert = len(cfg.ocsp.cert_id_hashes)
    report: dict[str, Any] = {}
    async with trio.open_nursery() as nursery:
        await nursery.start(writer.run)
        await nursery.start(pool.run)
        clock = FixedClock(dt.datetime.fromtimestamp(loaded_at, dt.UTC))
        refresher = ocsp_refresher(cfg, signer=pool, store=store, writer=writer, clock=clock)
        ceilings = [await trio.to_thread.run_sync(ceiling)] if ceiling else []
        seconds = cpu = possible = 0.0
        parts = []
        bar = PROGRESS.bar(f"re-signing {n:,} responses in {segments} parts", n)
        for k in range(segments):
            # Everything in part k is due by now; what the refresher stores is due days later.
            clock.set(dt.datetime.fromtimestamp(segment_due(loaded_at, segments, k), dt.UTC))
            before = refresher.statistics().refreshed
            started = time.perf_counter()
            cpu_started = time.process_time()  # this (core) process only, not the workers
            while await refresher.refresh_once():
                pass
            part_seconds = time.perf_counter() - started
            seconds += part_seconds
            cpu += time.process_time() - cpu_started
            done = refresher.statistics().refreshed - before
            part = {"responses": done, "signatures_per_s": round(done * per_cert / part_seconds, 1)}
            if ceiling:
                ceilings.append(await trio.to_thread.run_sync(ceiling))
                around = (ceilings[-2] + ceilings[-1]) / 2
                possible += around * part_seconds
                part["of_ceiling"] = round(done * per_cert / part_seconds / around, 3)
            parts.append(part)
            bar.advance(done)
        bar.close()
        refreshed = refresher.statistics().refreshed
        report = {
            "responses": refreshed,
            "seconds": round(seconds, 2),
            "responses_per_s": round(refreshed / seconds, 1),
            "signatures_per_s": round(refreshed * per_cert / seconds, 1),
            # CPU the core process spends per response (building, IPC, commit): on a
            # machine where the signer shares the cores, this is what the gap costs.
            "core_cpu_us_per_response": round(cpu / max(1, refreshed) * 1e6, 1),
            "parts": parts,
        }
        if ceiling:
            report["signer_ceilings"] = [round(c, 1) for c in ceilings]
            report["signer_ceiling_per_s"] = round(possible / seconds, 1)
            report["of_ceiling"] = round(refreshed * per_cert / possible, 3)
        nursery.cancel_scope.cancel()
    if report["responses"] != n:
        raise HankoError(f"refreshed {report['responses']} of {n} responses")
    return report


async def _revocation_latency(
    cfg: Config, store: Store, serials: list[bytes], port: int, issuer: x509.Certificate
) -> dict[str, float]:
    """Revoke through the engine (sign + durable commit), then poll the responder."""
    pool = signer_pool(cfg)
    writer = store_writer(cfg, store)
    async with trio.open_nursery() as nursery:
        await nursery.start(writer.run)
        await nursery.start(pool.run)
        engine: IssuanceEngine = issuance_engine(
            cfg, signer=pool, store=store, writer=writer, clock=SystemClock()
        )
        latencies = await revoke_and_poll(engine, _requests(store, serials, issuer), port)
        nursery.cancel_scope.cancel()
    return latency_summary(latencies)


def _unrevoked(store: Store, serials: list[bytes], n: int, rng: random.Random) -> list[bytes]:
    with store.read() as txn:
        good = [s for s in serials if (rec := txn.get_cert(s)) and rec.status is CertStatus.GOOD]
    return rng.sample(good, min(n, len(good)))


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
    issuer = x509.load_pem_x509_certificate(cfg.path(cfg.issuers()[0].config.cert).read_bytes())
    from core.ca.issuer import issuer_info

    key_id = issuer_info(
        issuer, KeyType(cfg.issuers()[0].config.key_type), cfg.ca.base_url, ocsp=True
    ).key_id
    store_path = workdir / "lmdb"
    store_path.mkdir()
    report: dict[str, Any] = {"certificates": certs, "revoked_fraction": revoked}
    store = LmdbStore(store_path, map_size=cfg.store.map_size.bytes, create=True)
    try:
        t0 = time.perf_counter()
        loaded_at = int(time.time())
        serials = load_store(
            store, key_id, certs, revoked, seed=6960, now=loaded_at, segments=SEGMENTS
        )
        report["load_seconds"] = round(time.perf_counter() - t0, 1)
        _progress(f"loaded {certs:,} certificates in {report['load_seconds']} s; refreshing")

        key_type = KeyType(cfg.issuers()[0].config.key_type)
        workers = cfg.signer.workers or os.cpu_count() or 1

        def ceiling_now() -> float:
            return raw_ceiling(
                worker_spec(cfg),
                cfg.issuers()[0].config.ocsp_responder_key_label,
                key_type.default_algorithm,
                workers,
                3.0,
            )

        refresh = trio.run(
            functools.partial(
                _refresh_all, loaded_at=loaded_at, segments=SEGMENTS, ceiling=ceiling_now
            ),
            cfg,
            store,
            certs,
        )
        report["refresh"] = refresh
        _progress(f"refresh: {refresh['responses_per_s']:,.0f} responses/s; load tests next")

        rng = random.Random(5019)
        picked = rng.sample(serials, min(sample, len(serials)))
        picked_set = set(picked)
        reqs = _requests(store, picked, issuer)
        port = peers.free_port()
        procs = responder_processes(cfg, store_path=store_path, listen=f"127.0.0.1:{port}")
        results: dict[str, dict[str, float]] = {}

        lua_get, lua_post = _scripts(workdir, reqs)

        async def hanko_phase() -> None:
            async with trio.open_nursery() as nursery:
                await nursery.start(procs.run)
                candidates = [s for s in serials[:5000] if s not in picked_set]
                report["revocation_to_served"] = await _revocation_latency(
                    cfg, store, _unrevoked(store, candidates, 20, rng), port, issuer
                )
                url = f"http://127.0.0.1:{port}"
                await trio.to_thread.run_sync(peers.check_all, url, reqs, _hanko_get)
                await trio.to_thread.run_sync(
                    peers.check_all, url, reqs, lambda s, d: "/ocsp", "POST"
                )
                for name, script in (("hanko GET", lua_get), ("hanko POST", lua_post)):
                    _progress(f"wrk -c{connections} for {seconds:g} s against {name}")
                    results[name] = await trio.to_thread.run_sync(
                        functools.partial(
                            run_wrk, url, script, connections=connections, seconds=seconds
                        )
                    )
                nursery.cancel_scope.cancel()

        trio.run(hanko_phase)
        # The same store through Redis: a primary, a replica, responders on the replica.
        revoke = _requests(
            store,
            _unrevoked(store, [s for s in serials[:20000] if s not in picked_set], 100, rng),
            issuer,
        )
        replica = ocsp_replica.run(
            cfg,
            store,
            reqs=reqs,
            revoke=revoke,
            get_target=_hanko_get,
            scripts={"replica GET": lua_get, "replica POST": lua_post},
            connections=connections,
            seconds=seconds,
            workdir=workdir,
            progress=_progress,
        )
        results.update(replica.pop("load"))
        report["replica"] = replica
    finally:
        store.close()

    report["load"] = results
    report["ratios"] = _peers(results, workdir, reqs, connections, seconds)
    report["settings"] = {
        "connections": connections,
        "seconds_per_run": seconds,
        "distinct_requests": len(reqs),
        "responder_processes": cfg.ocsp.responder_processes,
        "cert_id_hashes": list(cfg.ocsp.cert_id_hashes),
    }
    return report


def _scripts(workdir: Path, reqs: list[tuple[bytes, bytes, bytes]]) -> tuple[Path, Path]:
    """wrk's Lua scripts: the sampled requests as GETs, and as POSTs."""
    lua_get = workdir / "get.lua"
    peers.lua(lua_get, [(_hanko_get(s, der), b"") for s, der, _ in reqs])
    lua_post = workdir / "post.lua"
    peers.lua(lua_post, [("/ocsp", der) for _, der, _ in reqs])
    return lua_get, lua_post


def _peers(
    results: dict[str, dict[str, float]],
    workdir: Path,
    reqs: list[tuple[bytes, bytes, bytes]],
    connections: int,
    seconds: float,
) -> dict[str, float]:
    """cfssl and nginx under the same load, added to `results`; hanko's ratios to them,
    and the replica-backed responder's to the LMDB-backed one."""
    _progress(f"wrk -c{connections} for {seconds:g} s against cfssl ocspserve (POST)")
    results.update(peers.cfssl(workdir, reqs, connections, seconds))
    _progress(f"wrk -c{connections} for {seconds:g} s against nginx (GET of the same bytes)")
    results.update(peers.nginx(workdir, reqs, connections, seconds))
    h_get, h_post = results["hanko GET"]["requests_per_s"], results["hanko POST"]["requests_per_s"]
    r_get, r_post = (
        results["replica GET"]["requests_per_s"],
        results["replica POST"]["requests_per_s"],
    )
    return {
        "replica_get_over_lmdb_get": round(r_get / h_get, 2),
        "replica_post_over_lmdb_post": round(r_post / h_post, 2),
        "hanko_get_over_cfssl_post": round(h_get / results["cfssl POST"]["requests_per_s"], 2),
        "hanko_post_over_cfssl_post": round(h_post / results["cfssl POST"]["requests_per_s"], 2),
        "hanko_get_over_nginx_get": round(h_get / results["nginx GET"]["requests_per_s"], 2),
    }


def _print_text(report: dict[str, Any]) -> None:
    r = report["refresh"]
    lat = report["revocation_to_served"]
    rep = report["replica"]
    rlat = rep["revocation_to_served"]
    s = report["settings"]
    lines = [
        f"store: {report['certificates']:,} certificates,"
        f" {report['revoked_fraction']:.0%} revoked, loaded in {report['load_seconds']} s",
        f"refresh: {r['responses']:,} responses in {r['seconds']} s"
        f" = {r['responses_per_s']:,.0f}/s ({r['signatures_per_s']:,.0f} signatures/s,"
        f" {r['of_ceiling']:.0%} of the signer's raw ceiling {r['signer_ceiling_per_s']:,.0f}/s"
        f" (measured between the {len(r['parts'])} parts of the refresh:"
        f" {', '.join(f'{c:,.0f}' for c in r['signer_ceilings'])});"
        f" core CPU {r['core_cpu_us_per_response']} us per response)",
        f"revocation to served: p50 {lat['p50_ms']} ms, max {lat['max_ms']} ms"
        f" over {lat['revocations']} revocations",
        f"through a Redis replica: Redis rebuilt from LMDB in {rep['resync_seconds']} s,"
        f" replica synced at {rep['replica_synced_seconds']} s, the responder host listened in"
        f" {rep['responder_start_seconds']} s and was ready (its copy loaded) in"
        f" {rep['responder_ready_seconds']} s; revocation to served p50 {rlat['p50_ms']} ms,"
        f" p99 {rlat['p99_ms']} ms, max {rlat['max_ms']} ms over {rlat['revocations']}",
        f"load: wrk -c{s['connections']}, {s['seconds_per_run']} s per run,"
        f" {s['distinct_requests']:,} distinct requests",
        f"{'server':<13} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8}",
    ]
    for name, row in report["load"].items():
        lines.append(
            f"{name:<13} {row['requests_per_s']:>10,.0f} {row['p50_ms']:>8.2f}"
            f" {row['p99_ms']:>8.2f} {row['non_2xx']:>8.0f}"
        )
    lines += [f"{k}: {v}x" for k, v in report["ratios"].items()]
    print("\n".join(lines))


def run_from_cli(args: argparse.Namespace) -> int:
    for tool in ("wrk", "nginx", "cfssl", "redis-server"):
        if shutil.which(tool) is None:
            raise HankoError(f"{tool} is not installed: run scripts/dev.sh setup")
    cfg = load_config(args.config)
    if args.hashes:
        cfg = msgspec.structs.replace(
            cfg, ocsp=msgspec.structs.replace(cfg.ocsp, cert_id_hashes=args.hashes.split(","))
        )
    with tempfile.TemporaryDirectory(prefix="hanko-bench-ocsp-") as tmp:
        report = run(
            cfg,
            certs=args.certs,
            revoked=args.revoked,
            sample=args.sample,
            seconds=args.seconds,
            connections=args.connections,
            workdir=Path(tmp),
        )
    maybe_write(args, "ocsp", report)
    if args.json:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    else:
        _print_text(report)
    return 0
