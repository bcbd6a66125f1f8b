"""`hanko bench acme`: complete ACME orders per second (newOrder, authorizations,
finalize, download), p50 and p99, with 1, 16 and 64 concurrent ACME accounts, against
hanko and against Debian's Pebble on the same machine, driven by the same client code
(bench/acme_client.py).

hanko: a fresh ECDSA P-256 CA made by `hanko init` with the given configuration's
[signer] settings, licence enforcement on, OCSP pre-signing on, the per-account
request limit off (`[acme] account_rate = 0`), every order durably
committed and its certificate HSM-signed (SoftHSM); the accounts' names are under a
domain validated for their organization, so authorizations are valid at once.
Pebble: PEBBLE_VA_NOSLEEP=1 and PEBBLE_VA_ALWAYS_VALID=1 (a challenge passes at once,
but the client still takes it up and polls), PEBBLE_WFE_NONCEREJECT=0 (it would refuse
5% of good nonces on purpose), External Account Binding required as in hanko. Pebble
keeps everything in memory and signs in software.
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import json
import multiprocessing
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import msgspec
import trio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from bench.acme_client import Account, AcmeError, connect
from bench.issue_common import bench_organization, configure, free_port, start_logged, wait_up
from bench.progress import Progress
from bench.report import maybe_write
from core.acme.jws import b64decode, b64encode
from core.config import Config, load_config

BIN = Path(sys.executable).parent
MAX_ORDERS = 20_000  # per level: the loop is bounded in count as well as in time


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Part(msgspec.Struct, frozen=True):
    latencies: list[float]
    errors: list[str]
    wall: float


async def _run(accounts: list[Account], seconds: float) -> Part:
    latencies: list[float] = []
    errors: list[str] = []
    deadline = trio.current_time() + seconds

    async def worker(account: Account) -> None:
        while trio.current_time() < deadline and len(latencies) < MAX_ORDERS:
            try:
                latencies.append(await account.order())
            except (AcmeError, httpx.HTTPError) as exc:
                errors.append(f"{exc.__class__.__name__}: {exc}"[:200])
                if len(errors) > 100:
                    return

    started = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for account in accounts:
            nursery.start_soon(worker, account)
    return Part(latencies=latencies, errors=errors, wall=time.perf_counter() - started)


async def _client_part(job: dict[str, Any], barrier: Any) -> Part:
    """One client process's share of a level: register its accounts, warm up, wait for
    the others, then run."""
    http, directory = await connect(job["directory"], job["ca_file"])
    try:
        accounts = [Account(http, directory, name) for name in job["names"]]
        for account, (kid, key) in zip(accounts, job["creds"], strict=True):
            await account.register(kid, bytes.fromhex(key))
        for account in accounts[:2]:  # modules, signer pipes, connections
            await account.order()
        await trio.to_thread.run_sync(barrier.wait)
        return await _run(accounts, job["seconds"])
    finally:
        await http.aclose()


def _client_process(job: dict[str, Any], barrier: Any, results: Any) -> None:
    results.put(msgspec.json.encode(trio.run(_client_part, job, barrier)))


def _level(
    directory: str,
    ca_file: str,
    creds: list[tuple[str, bytes]],
    names: list[str],
    *,
    seconds: float,
    processes: int,
) -> dict[str, Any]:
    """One level: the accounts split over client processes (one Python process cannot
    keep 64 accounts busy: it was the limit, for both servers)."""
    n = len(names)
    count = min(n, processes)
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(count), ctx.Queue()
    procs = []
    for k in range(count):
        job = {
            "directory": directory,
            "ca_file": ca_file,
            "creds": [(kid, key.hex()) for kid, key in creds[k::count]],
            "names": names[k::count],
            "seconds": seconds,
        }
        proc = ctx.Process(target=_client_process, args=(job, barrier, results))
        proc.start()
        procs.append(proc)
    parts = [msgspec.json.decode(results.get(timeout=seconds + 300), type=Part) for _ in procs]
    for proc in procs:
        proc.join(timeout=30)
    latencies = [x for part in parts for x in part.latencies]
    errors = [e for part in parts for e in part.errors]
    wall = max(part.wall for part in parts)
    return {
        "accounts": n,
        "client_processes": count,
        "orders": len(latencies),
        "orders_per_s": round(len(latencies) / wall, 1),
        "p50_ms": round(_percentile(latencies, 0.5) * 1e3, 1),
        "p99_ms": round(_percentile(latencies, 0.99) * 1e3, 1),
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
    }


PROGRESS = Progress("acme")


def _levels(
    directory: str,
    ca_file: str,
    creds: list[tuple[str, bytes]],
    names: list[str],
    levels: list[int],
    seconds: float,
    processes: int,
) -> list[dict[str, Any]]:
    """Each level with accounts of its own (an EAB credential binds one account)."""
    out, used = [], 0
    for n in levels:
        PROGRESS.say(f"{directory}: {n} accounts for {seconds:g} s")
        out.append(
            _level(
                directory,
                ca_file,
                creds[used : used + n],
                names[used : used + n],
                seconds=seconds,
                processes=processes,
            )
        )
        used += n
    return out


def bench_hanko(
    base: Config, tmp: Path, levels: list[int], seconds: float, processes: int
) -> list[dict[str, Any]]:
    ca = tmp / "hanko"
    subprocess.run([str(BIN / "hanko"), "init", str(ca)], check=True, capture_output=True)
    port = free_port()
    configure(ca / "hanko.toml", base, port)
    text = (ca / "hanko.toml").read_text().replace("127.0.0.1:8080", f"127.0.0.1:{free_port()}")
    # Protocol speed: the per-account request limit would cap one busy account.
    line = 'eab_secret = { file = "secrets/acme-eab.secret" }'
    text = text.replace(line, f"{line}\naccount_rate = 0")
    (ca / "hanko.toml").write_text(text)
    log = tmp / "hanko.log"
    server = start_logged([str(BIN / "hanko"), "serve", "-c", str(ca / "hanko.toml")], log)
    bundle = str(ca / "tls" / "internal-ca.pem")
    url = f"https://127.0.0.1:{port}"
    try:
        wait_up(f"{url}/healthz", bundle, server, log)
        admin = bench_organization(url, ca, bundle)
        admin.post(
            "/v1/admin/organizations/bench/domains",
            json={"domain": "example.co.jp", "method": "dns-txt"},
        ).raise_for_status()
        creds = []
        for _ in range(sum(levels)):
            r = admin.post(
                "/v1/acme/eab", json={"account": "bench", "organization": "bench", "profile": "ov"}
            )
            r.raise_for_status()
            creds.append((r.json()["kid"], b64decode(r.json()["hmac_key"])))
        names = [f"acct{i}.example.co.jp" for i in range(sum(levels))]
        return _levels(f"{url}/acme/directory", bundle, creds, names, levels, seconds, processes)
    finally:
        server.terminate()
        server.wait(timeout=30)


def _pebble_tls(tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "pebble.pem", tmp / "pebble.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


def bench_pebble(
    tmp: Path, levels: list[int], seconds: float, processes: int
) -> list[dict[str, Any]]:
    cert, key = _pebble_tls(tmp)
    port = free_port()
    creds = [(f"kid-{i}", secrets.token_bytes(32)) for i in range(sum(levels))]
    config = {
        "pebble": {
            "listenAddress": f"127.0.0.1:{port}",
            "managementListenAddress": "",
            "certificate": str(cert),
            "privateKey": str(key),
            "httpPort": free_port(),
            "tlsPort": free_port(),
            "ocspResponderURL": "",
            "externalAccountBindingRequired": True,
            "externalAccountMACKeys": {kid: b64encode(k) for kid, k in creds},
        }
    }
    (tmp / "pebble.json").write_text(json.dumps(config))
    env = {
        **os.environ,
        "PEBBLE_VA_NOSLEEP": "1",
        "PEBBLE_VA_ALWAYS_VALID": "1",
        "PEBBLE_WFE_NONCEREJECT": "0",
    }
    log = tmp / "pebble.log"
    server = start_logged(["pebble", "-config", str(tmp / "pebble.json")], log, env)
    url = f"https://127.0.0.1:{port}"
    try:
        wait_up(f"{url}/dir", str(cert), server, log)
        names = [f"acct{i}.example.com" for i in range(sum(levels))]
        return _levels(f"{url}/dir", str(cert), creds, names, levels, seconds, processes)
    finally:
        server.terminate()
        server.wait(timeout=30)


def run_from_cli(args: argparse.Namespace) -> int:
    from bench.acme_mpic import bench_mpic

    sections = {s.strip() for s in args.sections.split(",") if s.strip()}
    unknown = sections - {"pebble", "mpic"}
    if unknown or not sections:
        raise SystemExit(f"--sections: pebble and/or mpic, not {', '.join(sorted(unknown))}")
    if "pebble" in sections and shutil.which("pebble") is None:
        raise SystemExit("pebble is not installed: run scripts/dev.sh setup")
    base = load_config(args.config)
    levels = sorted({int(n) for n in args.accounts.split(",")})
    hanko: list[dict[str, Any]] = []
    pebble: list[dict[str, Any]] = []
    report: dict[str, Any] = {
        "seconds": args.seconds,
        "client_processes": args.client_processes,
        "levels": [],
    }
    with tempfile.TemporaryDirectory(prefix="hanko-bench-acme-") as tmp:
        if "pebble" in sections:
            hanko = bench_hanko(base, Path(tmp), levels, args.seconds, args.client_processes)
            pebble = bench_pebble(Path(tmp), levels, args.seconds, args.client_processes)
        if "mpic" in sections:
            report["mpic"] = bench_mpic(
                base,
                Path(tmp),
                workers=args.mpic_workers,
                seconds=args.seconds,
                processes=args.client_processes,
            )
    for h, p in zip(hanko, pebble, strict=True):
        # A side whose orders failed (Pebble 2.4 sometimes stops answering at 64
        # accounts until the client's timeout) gives no comparison.
        valid = p["orders_per_s"] and not h["errors"] and not p["errors"]
        ratio = round(h["orders_per_s"] / p["orders_per_s"], 3) if valid else None
        report["levels"].append(
            {"accounts": h["accounts"], "hanko": h, "pebble": p, "hanko_over_pebble": ratio}
        )
    maybe_write(args, "acme", report)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"ACME orders (newOrder to download), {args.seconds:g}s per level")
    for level in report["levels"]:
        h, p = level["hanko"], level["pebble"]
        print(
            f"  {level['accounts']:>3} accounts: hanko {h['orders_per_s']:>7.1f}/s"
            f" (p50 {h['p50_ms']} ms, p99 {h['p99_ms']} ms, errors {h['errors']}),"
            f" pebble {p['orders_per_s']:>7.1f}/s (p50 {p['p50_ms']} ms, p99 {p['p99_ms']} ms,"
            f" errors {p['errors']}); hanko/pebble {level['hanko_over_pebble']}"
        )
    if "mpic" in report:
        m = report["mpic"]
        print(f"ACME orders of new names (http-01 and CAA each time), {m['workers']} workers")
        for mode in ("without", "with"):
            r = m[mode]
            print(
                f"  {mode:>7} {m['perspectives']} perspectives: {r['orders_per_s']:>7.1f}/s"
                f" (p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, errors {r['errors']});"
                f" CPU per order: primary {r['primary_cpu_ms_per_order']} ms,"
                f" perspectives {r['perspectives_cpu_ms_per_order']} ms"
            )
        print(f"  with/without {m['with_over_without']}")
    return 0
