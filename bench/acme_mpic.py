"""`hanko bench acme`'s MPIC section: complete ACME orders per second when every order
names a new domain (so each takes an http-01 validation and a fresh CAA decision),
with five remote perspectives corroborating both and without any, in the same run, on
the same CA and the same DNS.

The world, all on loopback: a DNSSEC lab (NSD and Unbound, bench/dns_lab.py) serving
`hanko-bench.jp` (every name an address of 127.0.0.1, CAA permitting this CA at the apex);
five `hanko perspective serve` processes, each with an Unbound view of its own
(bench/perspectives.py); nginx answers http-01 (every worker orders under the same
ACME account, so a token's key authorization needs no lookup).
The perspectives share the machine's cores with hanko: on one host their work is a
cost the primary pays too, which a deployment spreads over five hosts.
"""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import msgspec
import trio
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from bench.acme_client import Account, AcmeError, connect
from bench.dns_lab import DnsLab, Zone
from bench.issue_common import (
    CAA_OFF,
    bench_organization,
    configure,
    free_port,
    start_logged,
    wait_up,
)
from bench.ocsp_peers import wait_port
from bench.perspectives import PerspectiveLab
from bench.proc_cpu import tree_cpu
from bench.progress import Progress
from core.acme.jws import b64decode, canonical_jwk, thumbprint
from core.config import Config

PROGRESS = Progress("acme mpic")
BIN = Path(sys.executable).parent
ZONE = "hanko-bench.jp"  # under a public suffix: ACME refuses reserved names
IDENTITY = "pki.hanko.example.com"  # what `hanko init` writes to [caa] identities
FIVE = (
    ("ap-tokyo", "APNIC"),
    ("eu-paris", "RIPE"),
    ("eu-berlin", "RIPE"),
    ("us-ohio", "ARIN"),
    ("sa-lima", "LACNIC"),
)
MAX_ORDERS = 20_000
MODES = ("without", "with")


class Part(msgspec.Struct, frozen=True):
    latencies: list[float]
    errors: list[str]
    wall: float


def _token_site(root: Path, port: int, thumbprint: str) -> subprocess.Popen[bytes]:
    """nginx as the applicants' web site: every http-01 token answered with its key
    authorization (one ACME account for every order). Six fetches an order arrive at
    once (the primary's and five perspectives'), which a web server of C takes in its
    stride: a Python one would put its own cost into what MPIC is measured to cost."""
    root.mkdir(parents=True)
    root.chmod(0o755)
    for d in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (root / d).mkdir()
    conf = root / "nginx.conf"
    conf.write_text(
        f"""
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log error;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {root}/body; proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi; uwsgi_temp_path {root}/uwsgi; scgi_temp_path {root}/scgi;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location ~ ^/\\.well-known/acme-challenge/([A-Za-z0-9_-]+)$ {{
            default_type text/plain;
            return 200 "$1.{thumbprint}";
        }}
    }}
}}
"""
    )
    proc = subprocess.Popen(
        ["nginx", "-p", str(root), "-c", str(conf), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=(root / "stderr").open("w"),
    )
    wait_port(port, proc, "nginx")
    return proc


async def _client_part(job: dict[str, Any], barrier: Any) -> Part:
    http, directory = await connect(job["directory"], job["ca_file"])
    key = serialization.load_pem_private_key(job["key"].encode(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    workers = [Account(http, directory, f"w.{ZONE}", key=key) for _ in range(job["workers"])]
    for w in workers:
        w.kid = job["kid"]
    latencies: list[float] = []
    errors: list[str] = []
    counter = iter(range(10**9))

    def name() -> str:
        return f"{job['prefix']}-{next(counter)}.{ZONE}"

    try:
        await workers[0].order(name())  # warm: connections, modules, the signer pipes
        await trio.to_thread.run_sync(barrier.wait)
        deadline = trio.current_time() + job["seconds"]
        started = time.perf_counter()

        async def loop(w: Account) -> None:
            while trio.current_time() < deadline and len(latencies) < MAX_ORDERS:
                try:
                    latencies.append(await w.order(name()))
                except (AcmeError, httpx.HTTPError) as exc:
                    errors.append(f"{exc.__class__.__name__}: {exc}"[:300])
                    if len(errors) > 100:
                        return

        async with trio.open_nursery() as nursery:
            for w in workers:
                nursery.start_soon(loop, w)
        return Part(latencies=latencies, errors=errors, wall=time.perf_counter() - started)
    finally:
        await http.aclose()


def _client_process(job: dict[str, Any], barrier: Any, results: Any) -> None:
    try:
        part = trio.run(_client_part, job, barrier)
    except Exception as exc:  # the others stop waiting for this one, and it says why
        barrier.abort()
        part = Part(latencies=[], errors=[f"{exc.__class__.__name__}: {exc}"[:300]], wall=1.0)
    results.put(msgspec.json.encode(part))


def _level(job: dict[str, Any], workers: int, processes: int) -> dict[str, Any]:
    count = max(1, min(workers, processes))
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(count), ctx.Queue()
    procs = []
    for k in range(count):
        mine = {**job, "workers": len(range(k, workers, count)), "prefix": f"{job['prefix']}{k}"}
        proc = ctx.Process(target=_client_process, args=(mine, barrier, results))
        proc.start()
        procs.append(proc)
    parts = [
        msgspec.json.decode(results.get(timeout=job["seconds"] + 300), type=Part) for _ in procs
    ]
    for proc in procs:
        proc.join(timeout=30)
    latencies = sorted(x for p in parts for x in p.latencies)
    errors = [e for p in parts for e in p.errors]
    wall = max(p.wall for p in parts)

    def pct(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else 0.0

    return {
        "workers": workers,
        "orders": len(latencies),
        "orders_per_s": round(len(latencies) / wall, 1),
        "p50_ms": round(pct(0.5) * 1e3, 1),
        "p99_ms": round(pct(0.99) * 1e3, 1),
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
    }


def _serve(config: Path, log: Path, url: str, bundle: str) -> subprocess.Popen[bytes]:
    server = start_logged([str(BIN / "hanko"), "serve", "-c", str(config)], log)
    wait_up(f"{url}/healthz", bundle, server, log)
    return server


def bench_mpic(
    base: Config, tmp: Path, *, workers: int, seconds: float, processes: int
) -> dict[str, Any]:
    PROGRESS.say("starting the DNS lab and five perspectives")
    lab = DnsLab(
        tmp / "dns",
        [
            Zone(
                ZONE,
                "signed",
                [f"*.{ZONE}. IN A 127.0.0.1", f'{ZONE}. IN CAA 0 issue "{IDENTITY}"'],
            )
        ],
        tld="jp",
    ).start()
    ca = tmp / "mpic-ca"
    remotes: PerspectiveLab | None = None
    tokens: subprocess.Popen[bytes] | None = None
    try:
        port, http_port = free_port(), free_port()
        config = _make_ca(ca, base, lab.resolver, port, http_port)
        remotes = PerspectiveLab(config, tmp / "perspectives", FIVE, lab.view).start()
        url = f"https://127.0.0.1:{port}"
        bundle = str(ca / "tls" / "internal-ca.pem")
        out: dict[str, Any] = {"perspectives": len(FIVE), "workers": workers}
        for mode in MODES:
            if mode == "with":
                remotes.configure(timeout="10s")
            else:
                remotes.disable()
            # An organization, an ACME account and its key for each mode: the second
            # run starts with as few domain validations on record as the first.
            key = ec.generate_private_key(ec.SECP256R1())
            tokens = _token_site(
                tmp / f"site-{mode}", http_port, thumbprint(canonical_jwk(key.public_key()))
            )
            server = _serve(config, tmp / f"hanko-{mode}.log", url, bundle)
            try:
                job = {
                    "directory": f"{url}/acme/directory",
                    "ca_file": bundle,
                    "key": _pem(key),
                    "seconds": seconds,
                    "kid": _setup(url, ca, bundle, key, f"bench-{mode}"),
                    "prefix": mode,
                }
                PROGRESS.say(f"{mode} MPIC: {workers} workers for {seconds:g} s")
                cpu = _cpu(server.pid, remotes)
                out[mode] = _level(job, workers, processes)
                out[mode].update(_per_order(cpu, _cpu(server.pid, remotes), out[mode]["orders"]))
            finally:
                server.terminate()
                server.wait(timeout=30)
                tokens.terminate()
                tokens.wait(timeout=30)
                tokens = None
        w, wo = out["with"]["orders_per_s"], out["without"]["orders_per_s"]
        valid = wo and not out["with"]["errors"] and not out["without"]["errors"]
        out["with_over_without"] = round(w / wo, 3) if valid else None
        return out
    finally:
        if tokens is not None:
            tokens.terminate()
            tokens.wait(timeout=30)
        if remotes is not None:
            remotes.stop()
        lab.stop()


def _cpu(server: int, remotes: PerspectiveLab) -> tuple[float, float]:
    """CPU seconds so far of `hanko serve` (with its signer and responder processes) and
    of the perspectives together."""
    primary = sum(tree_cpu(server).values())
    perspectives = sum(
        sum(tree_cpu(r.proc.pid).values()) for r in remotes.remotes.values() if r.proc
    )
    return primary, perspectives


def _per_order(
    before: tuple[float, float], after: tuple[float, float], orders: int
) -> dict[str, float]:
    """Milliseconds of CPU an order cost the primary and the perspectives (the warm-up
    orders included in the time, not in the count: a slight overstatement)."""
    n = max(orders, 1)
    return {
        "primary_cpu_ms_per_order": round((after[0] - before[0]) * 1e3 / n, 2),
        "perspectives_cpu_ms_per_order": round((after[1] - before[1]) * 1e3 / n, 2),
    }


def _make_ca(ca: Path, base: Config, resolver: str, port: int, http_port: int) -> Path:
    """`hanko init`, with CAA on (what MPIC corroborates) through the lab's resolver,
    http-01 on the token server's port and no per-account rate."""
    subprocess.run([str(BIN / "hanko"), "init", str(ca)], check=True, capture_output=True)
    config = ca / "hanko.toml"
    configure(config, base, port)
    text = config.read_text().replace(CAA_OFF, "[caa]\n")
    text = text.replace("127.0.0.1:8080", f"127.0.0.1:{free_port()}")
    text = text.replace('resolver = "127.0.0.1:5053"', f'resolver = "{resolver}"')
    line = 'eab_secret = { file = "secrets/acme-eab.secret" }'
    text = text.replace(
        line, f"{line}\naccount_rate = 0\nhttp01_port = {http_port}\nallow_private_targets = true"
    )
    config.write_text(text)
    return config


def _pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _setup(url: str, ca: Path, bundle: str, key: ec.EllipticCurvePrivateKey, org: str) -> str:
    """An organization, its licence and one ACME account (EAB); the account's URL."""
    admin = bench_organization(url, ca, bundle, org)
    r = admin.post("/v1/acme/eab", json={"account": org, "organization": org, "profile": "ov"})
    r.raise_for_status()
    kid, mac = r.json()["kid"], b64decode(r.json()["hmac_key"])

    async def register() -> str:
        http, directory = await connect(f"{url}/acme/directory", bundle)
        try:
            account = Account(http, directory, f"w.{ZONE}", key=key)
            await account.register(kid, mac)
            assert account.kid is not None
            return account.kid
        finally:
            await http.aclose()

    return trio.run(register)
