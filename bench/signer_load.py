"""`hanko bench signer`: how close the batched signer gets to what the HSM can do.

For RSA-2048 and ECDSA P-256 keys on the configured token, in rounds that interleave
the three measurements (this machine is noisy; medians over rounds are reported):
- raw ceiling: N processes (N = the signer's worker count) calling python-pkcs11's
  sign() in a tight loop on a logged-in session, nothing else;
- batched: the SignerPool as configured, at 1, 16 and 256 concurrent callers;
- unbatched: the same pool with one request per batch and one batch in flight per
  worker, i.e. one IPC round trip per HSM call.
Each caller signs a 700-byte message (a typical TBSCertificate). The bench keys are
generated in the token once, under labels of their own, and reused by later runs.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import queue
import time
from collections.abc import Sequence
from typing import Any

import trio

from bench.progress import Progress
from bench.report import maybe_write
from bench.stats import median, percentile
from core.base.errors import HankoError
from core.cmd.wiring import signer_pool, worker_spec
from core.config import Config, load_config
from signer.algorithms import KeyType, SignAlgorithm
from signer.api import Priority
from signer.pool import SignerPool, WorkerSpec

MESSAGE = os.urandom(700)
BENCH_KEYS = {
    "rsa-2048": ("hanko-bench-rsa-2048", KeyType.RSA_2048, SignAlgorithm.RSA_PKCS1_SHA256),
    "ecdsa-p256": ("hanko-bench-ecdsa-p256", KeyType.ECDSA_P256, SignAlgorithm.ECDSA_SHA256),
}


# -- raw ceiling: separate processes, one PKCS#11 instance each --------------------------


def _ensure_keys(spec: WorkerSpec) -> None:
    from signer.token import TokenSession

    session = TokenSession(spec.module, spec.token_label, spec.pin, softhsm_conf=spec.softhsm_conf)
    try:
        for label, key_type, _ in BENCH_KEYS.values():
            try:
                session.private_key(label)
            except Exception:
                session.generate_key(label, key_type)
    finally:
        session.close()


def _raw_worker(
    spec: WorkerSpec, label: str, alg: int, seconds: float, start: Any, out: Any
) -> None:
    import hashlib

    from pkcs11 import Mechanism

    from signer.token import TokenSession

    try:
        session = TokenSession(
            spec.module, spec.token_label, spec.pin, softhsm_conf=spec.softhsm_conf
        )
        key = session.private_key(label)
    except HankoError as exc:
        out.put(("error", str(exc)))
        return
    algorithm = SignAlgorithm(alg)
    if algorithm.is_ecdsa:
        # The bare HSM call: digest in, raw r||s out. Anything hanko adds is overhead.
        digest = hashlib.sha256(MESSAGE).digest()

        def call() -> None:
            key.sign(digest, mechanism=Mechanism.ECDSA)
    else:

        def call() -> None:
            key.sign(MESSAGE, mechanism=Mechanism.SHA256_RSA_PKCS)

    call()
    start.wait()
    n = 0
    t0 = time.perf_counter()
    deadline = t0 + seconds
    while True:
        call()
        n += 1
        if n % 16 == 0 and time.perf_counter() >= deadline:
            break
    out.put(("rate", n / (time.perf_counter() - t0)))


def raw_ceiling(
    spec: WorkerSpec, label: str, alg: SignAlgorithm, processes: int, seconds: float
) -> float:
    ctx = mp.get_context("spawn")
    start = ctx.Event()
    out = ctx.Queue()
    procs = [
        ctx.Process(target=_raw_worker, args=(spec, label, int(alg), seconds, start, out))
        for _ in range(processes)
    ]
    for p in procs:
        p.start()
    time.sleep(1.0)  # let every process log in before the clock starts
    start.set()
    rates: list[float] = []
    try:
        for _ in procs:
            try:
                kind, value = out.get(timeout=seconds + 60)
            except queue.Empty:
                raise HankoError(
                    f"signer ceiling: a signing process did not report within {seconds + 60:.0f} s"
                    f" (exit codes {[p.exitcode for p in procs]})"
                ) from None
            if kind == "error":
                raise HankoError(f"signer ceiling: {value}")
            rates.append(float(value))
    finally:
        for p in procs:
            p.join(timeout=seconds + 5)
            if p.exitcode is None:
                p.kill()
                p.join()
    return sum(rates)


# -- the pool under load ---------------------------------------------------------------


async def _load(
    pool: SignerPool, label: str, alg: SignAlgorithm, callers: int, seconds: float
) -> dict[str, float]:
    latencies: list[float] = []
    deadline = trio.current_time() + seconds
    perf = time.perf_counter

    async def caller() -> None:
        while trio.current_time() < deadline:
            t0 = perf()
            await pool.sign(label, alg, MESSAGE, priority=Priority.INTERACTIVE)
            latencies.append(perf() - t0)

    t0 = perf()
    async with trio.open_nursery() as nursery:
        for _ in range(callers):
            nursery.start_soon(caller)
    elapsed = perf() - t0
    latencies.sort()
    return {
        "per_s": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 50) * 1e3,
        "p99_ms": percentile(latencies, 99) * 1e3,
    }


def pool_run(
    cfg: Config,
    label: str,
    alg: SignAlgorithm,
    callers: Sequence[int],
    seconds: float,
    *,
    batched: bool,
    workers: int,
) -> dict[int, dict[str, float]]:
    results: dict[int, dict[str, float]] = {}

    async def main() -> None:
        pool = signer_pool(
            cfg,
            key_labels=(label,),
            workers=workers,
            batch_max=None if batched else 1,
            pipeline=2 if batched else 1,
        )
        async with trio.open_nursery() as nursery:
            await nursery.start(pool.run)
            await pool.sign(label, alg, MESSAGE)  # warm up
            for n in callers:
                results[n] = await _load(pool, label, alg, n, seconds)
            nursery.cancel_scope.cancel()

    trio.run(main)
    return results


# -- the report ------------------------------------------------------------------------


def run(cfg: Config, *, callers: Sequence[int], seconds: float, rounds: int) -> dict[str, Any]:
    spec = worker_spec(cfg)
    workers = cfg.signer.workers or os.cpu_count() or 1
    ctx = mp.get_context("spawn")
    p = ctx.Process(target=_ensure_keys, args=(spec,))
    p.start()
    p.join()
    if p.exitcode != 0:
        raise SystemExit("could not create the benchmark keys on the token")

    report: dict[str, Any] = {
        "workers": workers,
        "rounds": rounds,
        "seconds": seconds,
        "batch_max": cfg.signer.batch_max,
        "message_bytes": len(MESSAGE),
        "algorithms": {},
    }
    progress = Progress("signer")
    # Each round: the raw ceiling, then every caller count batched and unbatched.
    steps = len(BENCH_KEYS) * rounds * (1 + 2 * len(callers))
    bar = progress.bar(f"{steps} measurements of {seconds:g} s", steps)
    for name, (label, _, alg) in BENCH_KEYS.items():
        raw: list[float] = []
        batched: dict[int, list[dict[str, float]]] = {n: [] for n in callers}
        unbatched: dict[int, list[dict[str, float]]] = {n: [] for n in callers}
        for _ in range(rounds):
            raw.append(raw_ceiling(spec, label, alg, workers, seconds))
            bar.advance()
            for n, r in pool_run(
                cfg, label, alg, callers, seconds, batched=True, workers=workers
            ).items():
                batched[n].append(r)
            bar.advance(len(callers))
            for n, r in pool_run(
                cfg, label, alg, callers, seconds, batched=False, workers=workers
            ).items():
                unbatched[n].append(r)
            bar.advance(len(callers))
        ceiling = median(raw)

        def summary(rows: list[dict[str, float]], ceiling: float = ceiling) -> dict[str, float]:
            rate = median([r["per_s"] for r in rows])
            return {
                "per_s": round(rate, 1),
                "p50_ms": round(median([r["p50_ms"] for r in rows]), 3),
                "p99_ms": round(median([r["p99_ms"] for r in rows]), 3),
                "of_ceiling": round(rate / ceiling, 3),
            }

        entry: dict[str, Any] = {"raw_ceiling_per_s": round(ceiling, 1), "callers": {}}
        for n in callers:
            b, u = summary(batched[n]), summary(unbatched[n])
            entry["callers"][str(n)] = {
                "batched": b,
                "unbatched": u,
                "batched_over_unbatched": round(b["per_s"] / u["per_s"], 2),
            }
        report["algorithms"][name] = entry
    bar.close()
    return report


def _print_text(report: dict[str, Any]) -> None:
    print(
        f"signer benchmark: {report['workers']} worker processes, batch_max "
        f"{report['batch_max']}, {report['rounds']} rounds of {report['seconds']:g}s "
        "(medians)"
    )
    for name, entry in report["algorithms"].items():
        print(f"\n{name}: raw ceiling {entry['raw_ceiling_per_s']:.0f} signatures/s")
        print(
            f"  {'callers':>7}  {'mode':<9} {'sig/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
            f"{'of ceiling':>10}"
        )
        for n, row in entry["callers"].items():
            for mode in ("batched", "unbatched"):
                r = row[mode]
                print(
                    f"  {n:>7}  {mode:<9} {r['per_s']:>9.0f} {r['p50_ms']:>8.2f} "
                    f"{r['p99_ms']:>8.2f} {r['of_ceiling']:>9.0%}"
                )
            print(f"  {'':>7}  batched / unbatched: {row['batched_over_unbatched']:.2f}x")


def run_from_cli(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    callers = [int(x) for x in str(args.callers).split(",") if x.strip()]
    if not callers or min(callers) < 1:
        raise SystemExit("--callers needs positive integers, e.g. 1,16,256")
    report = run(cfg, callers=callers, seconds=args.seconds, rounds=args.rounds)
    maybe_write(args, "signer", report)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print_text(report)
    return 0
