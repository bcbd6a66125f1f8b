"""`hanko bench issue`'s store section: the batch endpoint with the store on LMDB and on
PostgreSQL, in one run, on CAs with the same settings, and two `hanko serve` processes on
one PostgreSQL store beside one.

PostgreSQL is a throwaway cluster of the benchmark's own (bench/pg_cluster.py) on
loopback, fsync on and `synchronous_commit = on`, as a store of record runs: a commit is
on disk before it is acknowledged, as LMDB's is. Each measurement is wrk on the batch
endpoint (licences off, OCSP and TLS on, as the main "licenses_off" measurement); with
two processes, one wrk per process at the same time, the certificates of both summed.
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench.issue_common import PROGRESS, configure, csr_pem, free_port, wrk_script
from bench.pg_cluster import ADMIN_ROLE, RUNTIME_ROLE, PostgresServer
from bench.proc_cpu import spent, tree_cpu
from bench.wrk import run_wrk
from core.config import Config
from core.store import pg_schema
from signer.algorithms import KeyType

BIN = Path(sys.executable).parent


# (name, on PostgreSQL, the CPU each `hanko serve` is pinned to, None: unpinned). Pinned,
# each process and its workers get one core of their own, as each host of a scale-out
# would: unpinned on two shared cores, one process already takes nearly both, and what
# a second adds is only what the first leaves.
_STORE_RUNS: tuple[tuple[str, bool, tuple[int | None, ...]], ...] = (
    ("lmdb", False, (None,)),
    ("postgresql", True, (None,)),
    ("postgresql_2", True, (None, None)),
    ("postgresql_pinned", True, (0,)),
    ("postgresql_2_pinned", True, (0, 1)),
)


def _init(folder: Path, key_type: KeyType, base: Config, pg: PostgresServer | None) -> Path:
    """`hanko init` of a CA (on PostgreSQL when `pg` is given); its configuration."""
    args = [str(BIN / "hanko"), "init", str(folder), "--key-type", key_type.value]
    if pg is not None:
        name = f"bench_{folder.name.replace('-', '_')}"
        pg.create_database(name)
        with psycopg.connect(
            pg.dsn(ADMIN_ROLE, name), password=pg.password, autocommit=True
        ) as conn:
            pg_schema.migrate(conn, runtime_role=RUNTIME_ROLE)
        secret = folder.parent / f"{folder.name}.password"
        secret.write_text(pg.password)
        secret.chmod(0o600)
        args += ["--store", pg.dsn(RUNTIME_ROLE, name), "--store-password-file", str(secret)]
    subprocess.run(args, check=True, capture_output=True)
    config = folder / "hanko.toml"
    configure(config, base, free_port())
    # As the main "licenses_off" measurement: the store's cost, not the ledger's.
    config.write_text(config.read_text() + "\n[licenses]\nenforce = false\n")
    return config


class _Server:
    """One `hanko serve` of a CA, on a configuration copy with ports of its own."""

    def __init__(self, config: Path, name: str, cpu: int | None = None) -> None:
        text = config.read_text()
        self.port = free_port()
        for table in ("api", "ocsp", "metrics"):
            line = _listen(text, table)
            if line:
                port = self.port if table == "api" else free_port()
                text = text.replace(line, f'listen = "127.0.0.1:{port}"', 1)
        self.config = config.with_name(f"hanko-{name}.toml")
        self.config.write_text(text)
        self.folder = config.parent
        self.log = self.folder / f"serve-{name}.log"
        with self.log.open("w") as log:
            pin = ["taskset", "-c", str(cpu)] if cpu is not None else []
            self.proc = subprocess.Popen(
                [*pin, str(BIN / "hanko"), "serve", "-c", str(self.config)],
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        self.url = f"https://127.0.0.1:{self.port}"
        self.api = httpx.Client(
            base_url=self.url,
            verify=ssl.create_default_context(cafile=str(self.folder / "tls/internal-ca.pem")),
            timeout=60,
        )
        deadline = time.monotonic() + 90
        while True:
            try:
                if self.api.get("/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise SystemExit(f"hanko serve did not start: {self.log.read_text()[-2000:]}")
            time.sleep(0.2)

    def stop(self) -> None:
        self.api.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _listen(text: str, table: str) -> str:
    """The `listen = ...` line of `[table]` in a configuration written by hanko init."""
    start = text.find(f"\n[{table}]\n")
    if start < 0:
        return ""
    end = text.find("\n[", start + 1)
    for line in text[start : end if end > 0 else None].splitlines():
        if line.startswith("listen = "):
            return line
    return ""


def _issuer_script(server: _Server, folder: Path, batch: int, tag: str) -> Path:
    """An account, its organization and domain, an issuer key; the wrk script."""
    api = server.api
    admin = {"Authorization": f"Bearer {(folder / 'secrets/admin.token').read_text().strip()}"}
    org = f"bench-{tag}"
    for path, body in (
        ("/v1/admin/accounts", {"id": org, "name": "Bench"}),
        (
            "/v1/admin/organizations",
            {
                "id": org,
                "level": "ov",
                "organization": "Hanko Bench K.K.",
                "country": "JP",
                "state": "Tokyo-to",
                "locality": "Chiyoda-ku",
                "account": org,
            },
        ),
        (
            f"/v1/admin/organizations/{org}/domains",
            {"domain": "example.co.jp", "method": "dns-txt"},
        ),
    ):
        api.post(path, headers=admin, json=body).raise_for_status()
    key = api.post("/v1/admin/keys", headers=admin, json={"role": "issuer", "accounts": [org]})
    key.raise_for_status()
    secret = key.json()["secret"]
    item = {"csr": csr_pem(), "profile": "ov", "organization": org}
    for _ in range(10):  # warm up: modules, signer pipes, pooled connections
        r = api.post(
            "/v1/certificates:batch",
            json={"requests": [item] * 10},
            headers={"Authorization": f"Bearer {secret}"},
        )
        r.raise_for_status()
        # A batch answers 200 with an error per item: only issued certificates count.
        failed = [x["error"] for x in r.json()["results"] if x.get("result") is None]
        if failed:
            raise SystemExit(f"the benchmark's batch does not issue: {failed[0]}")
    script = folder / f"batch-{tag}.lua"
    wrk_script(script, json.dumps({"requests": [item] * batch}).encode(), secret)
    return script


def _drive(
    servers: list[_Server], scripts: list[Path], *, batch: int, connections: int, seconds: float
) -> dict[str, Any]:
    """wrk on every server at once; certificates/s summed, CPU of the servers' trees."""
    results: list[dict[str, float]] = [{} for _ in servers]
    before = [tree_cpu(s.proc.pid) for s in servers]

    def one(i: int) -> None:
        results[i] = run_wrk(
            f"{servers[i].url}/v1/certificates:batch",
            scripts[i],
            connections=connections,
            seconds=seconds,
        )

    started = time.monotonic()
    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(servers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - started
    cpu: dict[str, float] = {}
    for s, b in zip(servers, before, strict=True):
        for role, sec in spent(b, tree_cpu(s.proc.pid)).items():
            cpu[role] = cpu.get(role, 0.0) + sec
    certs = sum(r["requests_per_s"] for r in results) * batch
    return {
        "certificates_per_s": round(certs, 1),
        "processes": len(servers),
        "non_2xx": sum(r["non_2xx"] for r in results),
        "p99_ms": max(r["p99_ms"] for r in results),
        "hanko_cores_busy": round(sum(cpu.values()) / wall, 2),
    }


def store_section(
    base: Config,
    key_type: KeyType,
    tmp: Path,
    *,
    seconds: float,
    batch: int,
    batch_connections: int,
) -> dict[str, Any]:
    """The batch endpoint on LMDB, on PostgreSQL, and by two processes on PostgreSQL."""
    runs = _STORE_RUNS if (os.cpu_count() or 1) >= 2 else _STORE_RUNS[:3]
    bar = PROGRESS.bar(f"{key_type.value}: stores (LMDB, PostgreSQL; 1 and 2 processes)", len(runs))
    out: dict[str, Any] = {}
    with ExitStack() as stack:
        pg = PostgresServer(name="bench", settings={"max_connections": "200"})
        stack.callback(pg.close)
        for name, on_pg, cpus in runs:
            config = _init(tmp / f"ca-{name}", key_type, base, pg if on_pg else None)
            servers: list[_Server] = []
            try:
                for i, cpu in enumerate(cpus):
                    servers.append(_Server(config, f"{name}-{i}", cpu))
                scripts = [_issuer_script(servers[0], config.parent, batch, name)] * len(cpus)
                pg_cpu = tree_cpu(pg.pid() or 0)
                out[name] = _drive(
                    servers, scripts, batch=batch, connections=batch_connections, seconds=seconds
                )
                if on_pg:
                    used = spent(pg_cpu, tree_cpu(pg.pid() or 0))
                    out[name]["postgresql_cpu_s"] = round(sum(used.values()), 2)
            finally:
                for s in servers:
                    s.stop()
            bar.advance()
    bar.close()

    def ratio(a: str, b: str) -> float | None:
        if a not in out or b not in out or not out[b]["certificates_per_s"]:
            return None
        return round(float(out[a]["certificates_per_s"]) / float(out[b]["certificates_per_s"]), 3)

    out["postgresql_of_lmdb"] = ratio("postgresql", "lmdb")
    out["two_processes_of_one"] = ratio("postgresql_2", "postgresql")
    out["two_processes_of_one_a_core_each"] = ratio("postgresql_2_pinned", "postgresql_pinned")
    return out


def print_section(key_type: str, s: dict[str, Any]) -> None:
    print(f"\n{key_type} issuing CA, batch endpoint by store:")
    for name, label in (
        ("lmdb", "LMDB                          "),
        ("postgresql", "PostgreSQL                    "),
        ("postgresql_2", "PostgreSQL, 2 serves          "),
        ("postgresql_pinned", "PostgreSQL, 1 serve on 1 core "),
        ("postgresql_2_pinned", "PostgreSQL, 2 serves, 1 core each"),
    ):
        m = s.get(name)
        if m is None:
            continue
        print(
            f"  {label} {m['certificates_per_s']:>8.0f} certificates/s, p99"
            f" {m['p99_ms']:.0f} ms per request, non-2xx {m['non_2xx']:.0f},"
            f" hanko {m['hanko_cores_busy']:.2f} cores busy"
        )
    print(f"  PostgreSQL / LMDB (aim: 50% or more): {s['postgresql_of_lmdb']:.1%}")
    for key, label in (
        ("two_processes_of_one", "sharing both cores"),
        ("two_processes_of_one_a_core_each", "a core each"),
    ):
        if s.get(key) is not None:
            print(f"  two processes / one on PostgreSQL, {label} (aim: 1.5x): {s[key]:.2f}x")
