"""`hanko bench issue`: certificates per second through the signing RPC.

For an RSA-2048 and an ECDSA P-256 issuing CA (each made by `hanko init` in a temporary
folder, with the [signer] and [issuance] settings of the given configuration), in one run:
- the signer's raw ceiling: the same number of processes as signer workers calling
  python-pkcs11 sign() on the issuing key in a loop, nothing else;
- `hanko serve` on loopback, driven by wrk over TLS (the API's default) with an issuer
  API key: POST /v1/certificates (one certificate per request) and POST
  /v1/certificates:batch (--batch certificates per request), first with license
  enforcement off, then on (every certificate takes a non-pooled unit and writes its
  ledger entry in its commit); the ratio on/off is what enforcement costs; then once more
  with OCSP off (`[ocsp] enabled = false`: no OCSP URL, no "good" responses to pre-sign,
  a CRL-only CA as the BR now allow), where a certificate is one signature instead of 1 +
  one per CertID hash; and last over plain HTTP (TLS off, loopback only), enforcement
  off: the ratio TLS/plain is what TLS costs with connections kept alive; and with
  Certificate Transparency on (licences off): three of the tests' CT logs
  (tests/ct_log.py), one operator each, each a process of its own on loopback, give
  every certificate its SCTs (a precertificate signed, committed and submitted, the
  final certificate signed and committed); the ratio CT on/off is what CT costs.
Every request issues a real certificate (new serial, durable commit). Subscriber keys are
ECDSA P-256; the CSR is the same in every request, which costs the server the same work.
Each measurement also reports the CPU each role spent per certificate (the core, the CSR
intake processes, the signer workers, the responders, wrk): on two shared cores that,
not the ceiling alone, bounds what issuance can reach.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from bench.ct_logs import ct_logs, ct_table
from bench.issue_common import (
    BIN,
    OCSP_ON,
    PROGRESS,
    configure,
    csr_pem,
    free_port,
    run_counted,
    serve_api,
    wrk_script,
)
from bench.report import maybe_write
from bench.signer_load import raw_ceiling
from core.cmd.wiring import worker_spec
from core.config import Config, load_config
from signer.algorithms import KeyType

# (name, licence enforcement, OCSP pre-signing, TLS, CT) of each measurement on one CA
_RUNS = (
    ("licenses_off", False, True, True, False),
    ("licenses_on", True, True, True, False),
    ("ocsp_off", False, False, True, False),
    ("plain_http", False, True, False, False),
    ("ct_on", False, True, True, True),
)
_TLS_LINES = ('tls_cert = "tls/api.pem"\n', 'tls_key = "tls/api.key"\n')


def bench_key_type(
    base: Config,
    key_type: KeyType,
    *,
    seconds: float,
    connections: int,
    batch: int,
    batch_connections: int,
    configurations: bool = True,
    stores: bool = True,
    caa: bool = True,
) -> dict[str, Any]:
    report: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="hanko-bench-issue-") as tmp:
        if configurations or caa:
            ca = Path(tmp) / "ca"
            subprocess.run(
                [str(BIN / "hanko"), "init", str(ca), "--key-type", key_type.value],
                check=True,
                capture_output=True,
            )
            port = free_port()
            configure(ca / "hanko.toml", base, port)
            if configurations:
                report.update(
                    _configurations(
                        ca,
                        port,
                        key_type,
                        seconds=seconds,
                        connections=connections,
                        batch=batch,
                        batch_connections=batch_connections,
                    )
                )
            if caa:
                from bench.issue_caa import caa_section

                report["caa"] = caa_section(
                    ca,
                    port,
                    Path(tmp) / "dns",
                    seconds=seconds,
                    batch=batch,
                    connections=batch_connections,
                )
        if stores:
            report["stores"] = _stores(base, key_type, Path(tmp), seconds, batch, batch_connections)
    return report


def _configurations(
    ca: Path,
    port: int,
    key_type: KeyType,
    *,
    seconds: float,
    connections: int,
    batch: int,
    batch_connections: int,
) -> dict[str, Any]:
    cfg = load_config(ca / "hanko.toml")
    workers = cfg.signer.workers or os.cpu_count() or 1
    PROGRESS.say(f"{key_type.value}: the signer's raw ceiling ({seconds:g} s)")
    ceiling = raw_ceiling(
        worker_spec(cfg),
        cfg.issuers()[0].config.key_label,
        key_type.default_algorithm,
        workers,
        seconds,
    )
    runs = {}
    bar = PROGRESS.bar(f"{key_type.value}: {len(_RUNS)} configurations, 2 endpoints", len(_RUNS))
    initial = (ca / "hanko.toml").read_text()
    with ct_logs() as logs:
        ct_toml = ct_table(logs)
        for name, enforce, ocsp, tls, ct in _RUNS:
            text = initial.replace(OCSP_ON, f"[ocsp]\nenabled = {str(ocsp).lower()}\n")
            if not tls:
                for line in _TLS_LINES:
                    text = text.replace(line, "")
            text += f"[licenses]\nenforce = {str(enforce).lower()}\n"
            (ca / "hanko.toml").write_text(text + (ct_toml if ct else ""))
            runs[name] = _measure(
                ca,
                port,
                name=name,
                enforce=enforce,
                tls=tls,
                seconds=seconds,
                connections=connections,
                batch=batch,
                batch_connections=batch_connections,
                others={"ct_logs": [p.pid for p in logs]} if ct else {},
            )
            bar.advance()
    bar.close()
    (ca / "hanko.toml").write_text(initial)
    # A certificate is one signature, plus one "good" OCSP response per CertID hash when
    # pre-signing is on: the signer's share of its ceiling counts them all.
    per_cert = 1 + len(cfg.ocsp.cert_id_hashes)
    report: dict[str, Any] = {
        "raw_ceiling_signatures_per_s": round(ceiling, 1),
        "workers": workers,
        "signatures_per_certificate": per_cert,
        # the CPU one signature costs when the signer runs at its ceiling on every core
        "signer_cpu_us_per_signature_at_ceiling": round(workers / ceiling * 1e6, 1),
    }
    for mode in ("single", "batch"):
        for name, _, ocsp, _tls, ct in _RUNS:
            m = runs[name][mode]
            sigs = (per_cert if ocsp else 1) + ct  # with CT, the precertificate too
            report[f"{mode}_{name}"] = {
                **m,
                "signatures_per_certificate": sigs,
                "of_ceiling": round(m["certificates_per_s"] / ceiling, 3),
                "signatures_of_ceiling": round(m["certificates_per_s"] * sigs / ceiling, 3),
            }
        off = runs["licenses_off"][mode]["certificates_per_s"]
        report[f"{mode}_enforcement_ratio"] = (
            round(runs["licenses_on"][mode]["certificates_per_s"] / off, 3) if off else None
        )
        plain = runs["plain_http"][mode]["certificates_per_s"]
        # TLS on (licenses_off) over TLS off (plain_http): the aim is 0.9 or more.
        report[f"{mode}_tls_ratio"] = round(off / plain, 3) if plain else None
        # CT on over off (licenses_off): the aim for the batch endpoint is 0.6 or more.
        with_ct = runs["ct_on"][mode]["certificates_per_s"]
        report[f"{mode}_ct_ratio"] = round(with_ct / off, 3) if off else None
    return report


def _stores(
    base: Config, key_type: KeyType, tmp: Path, seconds: float, batch: int, connections: int
) -> dict[str, Any]:
    from bench.issue_stores import store_section

    return store_section(
        base, key_type, tmp, seconds=seconds, batch=batch, batch_connections=connections
    )


def _measure(
    ca: Path,
    port: int,
    *,
    name: str,
    enforce: bool,
    tls: bool,
    seconds: float,
    connections: int,
    batch: int,
    batch_connections: int,
    others: dict[str, list[int]],
) -> dict[str, Any]:
    """`hanko serve` on `ca`; an account and its organization (with enforcement, the
    account's default license is a million non-pooled units, so every certificate takes
    one and writes its ledger entry); an issuer key for the account; wrk on the single
    and the batch endpoint."""
    tmp = ca.parent
    url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    with serve_api(ca, port, name=name, tls=tls) as (server, api, admin):
        org_id = f"bench-{name.replace('_', '-')}"
        api.post(
            "/v1/admin/accounts", headers=admin, json={"id": org_id, "name": "Bench"}
        ).raise_for_status()
        if enforce:
            api.post(
                f"/v1/admin/accounts/{org_id}/licenses",
                headers=admin,
                json={"id": "units", "kind": "non_pooled", "quantity": 1_000_000},
            ).raise_for_status()
        api.post(
            "/v1/admin/organizations",
            headers=admin,
            json={
                "id": org_id,
                "level": "ov",
                "organization": "Hanko Bench K.K.",
                "country": "JP",
                "state": "Tokyo-to",
                "locality": "Chiyoda-ku",
                "account": org_id,
            },
        ).raise_for_status()
        api.post(
            f"/v1/admin/organizations/{org_id}/domains",
            headers=admin,
            json={"domain": "example.co.jp", "method": "dns-txt"},
        ).raise_for_status()
        key = api.post(
            "/v1/admin/keys", headers=admin, json={"role": "issuer", "accounts": [org_id]}
        )
        key.raise_for_status()
        secret = key.json()["secret"]
        item = {"csr": csr_pem(), "profile": "ov", "organization": org_id}
        single_lua, batch_lua = tmp / "single.lua", tmp / "batch.lua"
        wrk_script(single_lua, json.dumps(item).encode(), secret)
        wrk_script(batch_lua, json.dumps({"requests": [item] * batch}).encode(), secret)
        # warm up: the first requests load modules and open the signer pipes
        for _ in range(20):
            api.post(
                "/v1/certificates", json=item, headers={"Authorization": f"Bearer {secret}"}
            ).raise_for_status()
        single = run_counted(
            server.pid,
            f"{url}/v1/certificates",
            single_lua,
            per_request=1,
            connections=connections,
            seconds=seconds,
            others=others,
        )
        batched = run_counted(
            server.pid,
            f"{url}/v1/certificates:batch",
            batch_lua,
            per_request=batch,
            connections=batch_connections,
            seconds=seconds,
            others=others,
        )
    return {
        "single": {**single, "connections": connections},
        "batch": {**batched, "batch_size": batch, "connections": batch_connections},
    }


def run_from_cli(args: argparse.Namespace) -> int:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: run scripts/dev.sh setup (apt-get install wrk)")
    base = load_config(args.config)
    report: dict[str, Any] = {"seconds": args.seconds, "lint": base.issuance.lint, "key_types": {}}
    names = [n.strip() for n in args.key_types.split(",") if n.strip()]
    known = {k.value for k in KeyType}
    if not names or set(names) - known:
        raise SystemExit(f"--key-types: choose among {', '.join(sorted(known))}")
    sections = {n.strip() for n in args.sections.split(",") if n.strip()}
    if not sections or sections - {"configurations", "stores", "caa"}:
        raise SystemExit("--sections: any of configurations, stores, caa")
    for name in names:
        report["key_types"][name] = bench_key_type(
            base,
            KeyType(name),
            seconds=args.seconds,
            connections=args.connections,
            batch=args.batch,
            batch_connections=args.batch_connections,
            configurations="configurations" in sections,
            stores="stores" in sections,
            caa="caa" in sections,
        )
    maybe_write(args, "issue", report)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"issuance benchmark: pkilint {report['lint']}, {args.seconds:g}s per measurement")
    for name, r in report["key_types"].items():
        if "stores" in r:
            from bench.issue_stores import print_section

            print_section(name, r["stores"])
        if "caa" in r:
            from bench.issue_caa import print_caa

            print(f"\n{name} issuing CA, CAA checking:")
            print_caa(name, r["caa"])
        if "raw_ceiling_signatures_per_s" not in r:
            continue
        print(
            f"\n{name} issuing CA: signer raw ceiling {r['raw_ceiling_signatures_per_s']:.0f}"
            f" signatures/s ({r['workers']} processes);"
            f" {r['signatures_per_certificate']} signatures per certificate with OCSP on;"
            f" {r['signer_cpu_us_per_signature_at_ceiling']:.0f} µs of CPU per signature there"
        )
        for mode in ("single", "batch"):
            for run, label in (
                ("licenses_off", "licenses off"),
                ("licenses_on", "licenses on "),
                ("ocsp_off", "OCSP off    "),
                ("plain_http", "plain HTTP  "),
                ("ct_on", "CT on       "),
            ):
                m = r[f"{mode}_{run}"]
                extra = f", {m['batch_size']} per request" if mode == "batch" else ""
                cpu = ", ".join(
                    f"{role} {us:.0f}" for role, us in m["cpu_us_per_certificate"].items() if us
                )
                print(
                    f"  {mode:<6} {label} {m['certificates_per_s']:>8.0f}"
                    f" certificates/s ({m['of_ceiling']:.0%} of ceiling; its"
                    f" {m['signatures_per_certificate']} signatures"
                    f" {m['signatures_of_ceiling']:.0%}), p50"
                    f" {m['p50_ms']:.1f} ms, p99 {m['p99_ms']:.1f} ms per request,"
                    f" {m['connections']} connections{extra}, non-2xx {m['non_2xx']:.0f}\n"
                    f"         CPU µs per certificate: {cpu}; {m['cores_busy']:.2f} cores busy"
                )
            ratio = r[f"{mode}_enforcement_ratio"]
            print(f"  {mode:<6} with enforcement / without: {ratio:.1%}" if ratio else "")
            tls = r[f"{mode}_tls_ratio"]
            print(f"  {mode:<6} TLS / plain HTTP (aim: 90% or more): {tls:.1%}" if tls else "")
            ct = r[f"{mode}_ct_ratio"]
            aim = " (aim: 60% or more)" if mode == "batch" else ""
            print(f"  {mode:<6} CT on / off{aim}: {ct:.1%}" if ct else "")
    return 0
