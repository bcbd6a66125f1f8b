"""`hanko bench issue`, its CAA section: the batch endpoint with CAA checking off and
on, in the same run, on the same CA and the same requests.

The requests are a portal's: every certificate of a batch is for another customer (an
organization of its own) and another registrable domain (`www.dN.jp` and `dN.jp`),
`BODIES` different batches in turn, so no lookup is shared inside a batch. The
resolver is local: the bench's DNS lab (bench/dns_lab.py: Unbound validating in front
of NSD, the TLD signed, every `dN.jp` with a CAA record naming the CA), on the same two
cores as everything else. With CAA on, `[caa] reuse = "0s"`: every certificate's names
are looked up at issuance, none answered from an earlier decision; the resolver has
answered each name before (a warm-up pass issues every batch once), as a resolver
does for names it sees again. Each run reports what it issued (the service's own
count: a batch answers 200 even when an item is refused), the DNS questions asked per
certificate, and the CPU each role spent, the resolver's included.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from bench.dns_lab import DnsLab
from bench.issue_common import BIN, CAA_OFF, PROGRESS, csr_pem, run_counted, serve_api
from core.config import load_config
from core.store import DomainRecord, OrgRecord, WriteTxn
from core.store.configured import open_store

BODIES = 50
ACCOUNT = "bench-caa"


def names(count: int) -> list[str]:
    return [f"d{i}.jp" for i in range(count)]


@contextmanager
def caa_lab(directory: Path, count: int, identity: str) -> Iterator[DnsLab]:
    """The bench's resolver: `count` registrable domains, each with a CAA record
    permitting `identity`, in the signed TLD; answers cached for an hour."""
    records = [f'{n}. IN CAA 0 issue "{identity}"' for n in names(count)]
    with DnsLab(directory, [], tld="jp", cache_max_ttl=3600, tld_records=records) as lab:
        yield lab


def _customers(ca: Path, count: int) -> None:
    """An account with `count` organizations, each with its domain validated, written
    to the store before the service starts (the admin API would take minutes)."""
    out = subprocess.run(
        [
            str(BIN / "hanko"),
            "licenses",
            "create-account",
            "-c",
            str(ca / "hanko.toml"),
            ACCOUNT,
            "--name",
            "Bench CAA",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"bench: creating the account failed: {out.stderr.strip()}")
    cfg = load_config(ca / "hanko.toml")

    def op(txn: WriteTxn) -> None:
        for i, domain in enumerate(names(count)):
            org = OrgRecord(
                id=f"o{i}",
                level="ov",
                organization=f"Customer {i} K.K.",
                country="JP",
                state="Tokyo-to",
                locality="Chiyoda-ku",
                validated_at=_now(),
                account=ACCOUNT,
            )
            txn.put_org(org, at_us=1, actor="bench")
            txn.put_domain(
                DomainRecord(
                    org_id=org.id,
                    domain=domain,
                    validated_at=_now(),
                    method="dns-txt",
                    attested_by="bench",
                ),
                at_us=1,
                actor="bench",
            )

    with open_store(cfg) as store:
        store.write(op)


def _now() -> int:
    import time

    return int(time.time())


def _lua(path: Path, bodies: list[bytes], token: str) -> None:
    """A wrk script that posts the bodies in turn, each thread from its own place."""
    quoted = []
    for body in bodies:
        text = body.decode()
        if "]==]" in text:
            raise ValueError("request body cannot be embedded in the wrk script")
        quoted.append(f"[==[{text}]==]")
    path.write_text(
        "local bodies = {" + ",\n".join(quoted) + "}\n"
        "local threads = 0\n"
        "function setup(thread) thread:set('start', threads * 7); threads = threads + 1 end\n"
        "function init(args) i = start or 0 end\n"
        'local headers = {["Content-Type"] = "application/json",'
        f' ["Authorization"] = "Bearer {token}"}}\n'
        "function request()\n"
        "  i = i % #bodies + 1\n"
        '  return wrk.format("POST", nil, headers, bodies[i])\n'
        "end\n"
    )


def caa_section(
    ca: Path, port: int, lab_dir: Path, *, seconds: float, batch: int, connections: int
) -> dict[str, Any]:
    count = BODIES * batch
    identity = load_config(ca / "hanko.toml").caa.identities[0]
    PROGRESS.say(f"CAA: {count} customers, each with a domain of its own")
    with caa_lab(lab_dir, count, identity) as lab:
        return _runs(ca, port, lab, count, seconds=seconds, batch=batch, connections=connections)


def _runs(
    ca: Path, port: int, lab: DnsLab, count: int, *, seconds: float, batch: int, connections: int
) -> dict[str, Any]:
    _customers(ca, count)
    domains = names(count)
    bodies = []
    for b in range(BODIES):
        items = [
            {"csr": csr_pem(f"www.{d}", d), "profile": "ov", "organization": f"o{b * batch + k}"}
            for k, d in enumerate(domains[b * batch : (b + 1) * batch])
        ]
        bodies.append(json.dumps({"requests": items}).encode())
    initial = (ca / "hanko.toml").read_text()
    with_lab = re.sub(r'(?m)^resolver = ".*"$', f'resolver = "{lab.resolver}"', initial)
    runs: dict[str, Any] = {}
    for name, on in (("caa_off", False), ("caa_on", True)):
        caa = f'[caa]\nenabled = {str(on).lower()}\nreuse = "0s"\n'
        # As the configurations' baseline (licenses_off): CAA's cost, not the ledger's.
        text = with_lab.replace(CAA_OFF, caa) + "\n[licenses]\nenforce = false\n"
        (ca / "hanko.toml").write_text(text)
        with serve_api(ca, port, name=name) as (server, api, admin):
            key = api.post(
                "/v1/admin/keys", headers=admin, json={"role": "issuer", "accounts": [ACCOUNT]}
            )
            key.raise_for_status()
            secret = key.json()["secret"]
            PROGRESS.say(f"CAA {'on' if on else 'off'}: warm-up, every batch once")
            for body in bodies:
                r = api.post(
                    "/v1/certificates:batch",
                    content=body,
                    headers={
                        "Authorization": f"Bearer {secret}",
                        "Content-Type": "application/json",
                    },
                )
                r.raise_for_status()
                refused = [x["error"] for x in r.json()["results"] if x.get("error")]
                if refused:
                    raise SystemExit(f"bench: the warm-up was refused: {refused[0]}")
            before = _stats(api, admin)
            script = ca.parent / f"{name}.lua"
            _lua(script, bodies, secret)
            measured = run_counted(
                server.pid,
                f"https://127.0.0.1:{port}/v1/certificates:batch",
                script,
                per_request=batch,
                connections=connections,
                seconds=seconds,
                others={"resolver": [lab.unbound_pid, lab.nsd_pid]},
            )
            after = _stats(api, admin)
        issued = after["issued"] - before["issued"]
        asked = measured["requests"] * batch
        runs[name] = {
            **measured,
            "batch_size": batch,
            "connections": connections,
            "issued": issued,
            "issued_of_asked": round(issued / asked, 3) if asked else None,
            "dns_questions_per_certificate": (
                round((after["queries"] - before["queries"]) / issued, 2) if issued else None
            ),
        }
    off = runs["caa_off"]["certificates_per_s"]
    runs["on_over_off"] = round(runs["caa_on"]["certificates_per_s"] / off, 3) if off else None
    (ca / "hanko.toml").write_text(initial)
    return runs


def _stats(api: httpx.Client, admin: dict[str, str]) -> dict[str, int]:
    s = api.get("/v1/statistics", headers=admin).json()
    caa = s.get("caa") or {}
    return {"issued": int(s["issuance"]["issued"]), "queries": int(caa.get("queries", 0))}


def print_caa(name: str, r: dict[str, Any]) -> None:
    for run, label in (("caa_off", "CAA off"), ("caa_on", "CAA on ")):
        m = r[run]
        cpu = ", ".join(
            f"{role} {us:.0f}" for role, us in m["cpu_us_per_certificate"].items() if us
        )
        dns = m["dns_questions_per_certificate"]
        print(
            f"  batch  {label} {m['certificates_per_s']:>8.0f} certificates/s, p50"
            f" {m['p50_ms']:.1f} ms, p99 {m['p99_ms']:.1f} ms, issued {m['issued_of_asked']:.0%}"
            f" of asked{f', {dns} DNS questions each' if dns else ''}\n"
            f"         CPU µs per certificate: {cpu}; {m['cores_busy']:.2f} cores busy"
        )
    ratio = r["on_over_off"]
    print(f"  batch  {name}: CAA on / off (aim: 80% or more): {ratio:.1%}" if ratio else "")
