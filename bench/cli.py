"""`hanko bench`: the benchmarks' subcommands (each module runs its own measurement)."""

from __future__ import annotations

import argparse
import signal
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from core.base.errors import HankoError
from core.cmd.common import Parser, add_config

# What `hanko bench` needs beyond the service: the `bench` extra of pyproject.toml.
BENCH_EXTRA = ("matplotlib", "pytest_benchmark", "coredis")


def bench_extra_missing() -> list[str]:
    import importlib.util

    return [m for m in BENCH_EXTRA if importlib.util.find_spec(m) is None]


def _stop_as_interrupted(signum: int, frame: FrameType | None) -> None:
    """SIGTERM (`kill`, `pkill`, a CI timeout) unwinds a bench as Ctrl-C does, so the
    servers and PostgreSQL clusters it started are stopped and its folders removed: the
    default action ends the process at once and leaves them running. The interrupt is
    raised by SIGINT's handler of the moment (trio's inside trio.run, which raises it
    only where that is safe). A second SIGTERM ends the process at once."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    handler = signal.getsignal(signal.SIGINT)
    if not callable(handler):  # SIGINT ignored (a background job) or left to the OS
        raise KeyboardInterrupt
    handler(signal.SIGINT, frame)


def _bench_command(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """A bench command that says, in one line, what to install when the extra is not,
    and cleans up after itself when terminated."""

    def checked(args: argparse.Namespace) -> int:
        missing = bench_extra_missing()
        if missing:
            raise HankoError(
                f"hanko bench needs the bench extra ({', '.join(missing)} missing):"
                " pip install 'hanko[bench]' (scripts/dev.sh installs it)",
                code="bench_extra_missing",
            )
        signal.signal(signal.SIGTERM, _stop_as_interrupted)
        return run(args)

    return checked


def cmd_bench_store(args: argparse.Namespace) -> int:
    from bench.store_commit import main as bench_main

    argv = ["--json"] if args.json else []
    if args.report is not None:
        argv += ["--report", str(args.report)]
    return bench_main(argv)


def cmd_bench_issue(args: argparse.Namespace) -> int:
    from bench.issue_load import run_from_cli

    return run_from_cli(args)


def cmd_bench_scale(args: argparse.Namespace) -> int:
    from bench.scale_load import run_from_cli

    return run_from_cli(args)


def cmd_bench_ocsp(args: argparse.Namespace) -> int:
    from bench.ocsp_load import run_from_cli

    return run_from_cli(args)


def cmd_bench_crl(args: argparse.Namespace) -> int:
    from bench.crl_load import run_from_cli

    return run_from_cli(args)


def cmd_bench_signer(args: argparse.Namespace) -> int:
    from bench.signer_load import run_from_cli

    return run_from_cli(args)


def cmd_bench_acme(args: argparse.Namespace) -> int:
    from bench.acme_load import run_from_cli

    return run_from_cli(args)


def cmd_bench_search(args: argparse.Namespace) -> int:
    from bench.search_load import run_from_cli

    return run_from_cli(args)


def cmd_bench_redis_clients(args: argparse.Namespace) -> int:
    from bench.redis_clients import run_from_cli

    return run_from_cli(args)


def cmd_bench_replication(args: argparse.Namespace) -> int:
    from bench.replication_load import run_from_cli

    return run_from_cli(args)


def _report_arg(b: argparse.ArgumentParser) -> None:
    b.add_argument(
        "--report",
        type=Path,
        default=None,
        metavar="DIR",
        help="also write DIR/<bench>.html with plots, and the JSON beside it",
    )


def _scale_parser(bench: Any) -> None:
    b = bench.add_parser(
        "scale", help="status at N certificates: store, Redis, responder host, nginx, CRLs"
    )
    add_config(b)
    b.add_argument("--certs", type=int, default=10_000_000, help="certificates in the store")
    b.add_argument("--revoked", type=float, default=0.05, help="fraction revoked")
    b.add_argument("--sample", type=int, default=10_000, help="distinct requests wrk cycles")
    b.add_argument("--seconds", type=float, default=10.0, help="per wrk run")
    b.add_argument("--connections", type=int, default=64)
    b.add_argument("--json", action="store_true", help="print the report as JSON")
    _report_arg(b)
    b.set_defaults(func=_bench_command(cmd_bench_scale))


def register(sub: Any) -> None:
    p = sub.add_parser("bench", help="run a benchmark")
    bench = p.add_subparsers(dest="bench", required=True, parser_class=Parser)
    b = bench.add_parser("store", help="durable writes/s: group commit against one commit each")
    b.add_argument("--json", action="store_true", help="print the result as JSON")
    _report_arg(b)
    b.set_defaults(func=_bench_command(cmd_bench_store))
    b = bench.add_parser("signer", help="signatures/s and latency through the batched signer")
    add_config(b)
    b.add_argument("--json", action="store_true", help="print the result as JSON")
    _report_arg(b)
    b.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    b.add_argument("--callers", default="1,16,256", help="comma-separated concurrent caller counts")
    b.add_argument("--rounds", type=int, default=3, help="interleaved rounds (medians reported)")
    b.set_defaults(func=_bench_command(cmd_bench_signer))
    _issue_parser(bench)
    b = bench.add_parser("ocsp", help="OCSP responder against cfssl and nginx; refresh; latency")
    add_config(b)
    b.add_argument("--certs", type=int, default=1_000_000, help="certificates in the store")
    b.add_argument("--revoked", type=float, default=0.1, help="fraction revoked")
    b.add_argument("--sample", type=int, default=10_000, help="distinct requests wrk cycles")
    b.add_argument("--seconds", type=float, default=10.0, help="per wrk run")
    b.add_argument("--connections", type=int, default=64)
    b.add_argument(
        "--hashes",
        default="",
        help="CertID hashes to pre-sign (sha1,sha256); default: the config's",
    )
    b.add_argument("--json", action="store_true", help="print the report as JSON")
    _report_arg(b)
    b.set_defaults(func=_bench_command(cmd_bench_ocsp))
    _scale_parser(bench)
    b = bench.add_parser("acme", help="complete ACME orders/s against Pebble, 1 to 64 accounts")
    add_config(b)
    b.add_argument("--accounts", default="1,16,64", help="comma-separated concurrent accounts")
    b.add_argument("--seconds", type=float, default=10.0, help="time per level")
    b.add_argument("--client-processes", type=int, default=4, help="load generator processes")
    b.add_argument(
        "--sections",
        default="pebble,mpic",
        help="pebble (hanko against Pebble, pre-validated names) and mpic (new names, with"
        " five remote perspectives and without)",
    )
    b.add_argument("--mpic-workers", type=int, default=16, help="concurrent orders, mpic section")
    b.add_argument("--json", action="store_true", help="print the report as JSON")
    _report_arg(b)
    b.set_defaults(func=_bench_command(cmd_bench_acme))
    b = bench.add_parser("crl", help="full and delta CRLs against openssl ca and cryptography")
    add_config(b)
    b.add_argument("--entries", type=int, default=1_000_000, help="revocations per set")
    b.add_argument("--json", action="store_true", help="print the report as JSON")
    _report_arg(b)
    b.set_defaults(func=_bench_command(cmd_bench_crl))
    _register_redis_clients(bench)
    b = bench.add_parser(
        "search", help="incident searches at N certificates: LMDB against PostgreSQL"
    )
    b.add_argument("--certs", type=int, default=1_000_000, help="certificates in each store")
    b.add_argument("--json", action="store_true", help="print the report as JSON")
    _report_arg(b)
    b.set_defaults(func=_bench_command(cmd_bench_search))


def _register_redis_clients(bench: Any) -> None:
    b = bench.add_parser(
        "redis-clients", help="Redis clients from trio (coredis, redis-py in a thread) and uvloop"
    )
    b.add_argument("--json", action="store_true", help="print the result as JSON")
    _report_arg(b)
    b.add_argument("--keys", type=int, default=20_000, help="keys written and read per round")
    b.add_argument("--batch", type=int, default=500, help="keys per pipeline or MGET")
    b.add_argument("--rounds", type=int, default=3, help="interleaved rounds (medians reported)")
    b.set_defaults(func=_bench_command(cmd_bench_redis_clients))
    b = bench.add_parser(
        "replication", help="Redis rebuilt from a store (resync) and a burst of changes replicated"
    )
    b.add_argument("--json", action="store_true", help="print the result as JSON")
    _report_arg(b)
    b.add_argument("--certs", type=int, default=1_000_000, help="certificates in the store")
    b.add_argument("--changes", type=int, default=100_000, help="re-signed responses in the burst")
    b.set_defaults(func=_bench_command(cmd_bench_replication))


def _issue_parser(bench: Any) -> None:
    b = bench.add_parser("issue", help="certificates/s through the signing RPC and the ceiling")
    add_config(b)
    b.add_argument("--json", action="store_true", help="print the result as JSON")
    _report_arg(b)
    b.add_argument("--seconds", type=float, default=10.0, help="time per measurement")
    b.add_argument("--connections", type=int, default=64, help="connections, single endpoint")
    b.add_argument("--batch", type=int, default=100, help="certificates per batch request")
    b.add_argument("--batch-connections", type=int, default=4, help="connections, batch endpoint")
    b.add_argument(
        "--key-types",
        default="rsa-2048,ecdsa-p256",
        help="issuing CA key types to measure, comma-separated",
    )
    b.add_argument(
        "--sections",
        default="configurations,stores",
        help="configurations (licences, OCSP, TLS, CT on and off) and/or stores (the batch"
        " endpoint on LMDB, on PostgreSQL, and by two processes on PostgreSQL)",
    )
    b.set_defaults(func=_bench_command(cmd_bench_issue))
