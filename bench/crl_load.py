"""`hanko bench crl`: full and delta CRLs from the store against openssl and cryptography.

In a throwaway store (its own LMDB folder and publish folder, the configured HSM):
1. 1,000,000 revocations in one partition, and 1,000,000 more spread over 64 others.
2. hanko: the 1M-entry partition in full (number commit, snapshot, hash, HSM signature,
   file written and fsynced); the 64 partitions one after the other; then 1,000 new
   revocations and a delta CRL; then the 1M partition rebuilt, and the changed ones of
   the 64.
3. On the same 1M entries: `openssl ca -gencrl` (software key, index file prepared
   beforehand and not timed) and cryptography's CertificateRevocationListBuilder given
   the whole list at construction (its RevokedCertificate objects built beforehand and
   timed apart), each in a child process so its peak RSS is its own.

Memory: hanko's peak is what tracemalloc sees during a second, otherwise identical 1M
build (Python's allocations: every buffer the build makes is a Python bytes object; the
LMDB map is the OS page cache, shared and not allocated). The others: the child's peak
RSS minus its RSS before the timed work.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import msgspec
import trio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from bench.report import maybe_write
from core.base.clock import SystemClock
from core.base.reasons import RevocationReason
from core.cmd.wiring import crl_publisher, signer_pool, store_writer
from core.config import Config, load_config
from core.store import LmdbStore, Store, WriteTxn
from crl.encoder import revoked_entry
from crl.publisher import CrlPublisher, PublishedCrl

REASONS = [
    RevocationReason.KEY_COMPROMISE,
    RevocationReason.SUPERSEDED,
    RevocationReason.CESSATION_OF_OPERATION,
    RevocationReason.UNSPECIFIED,
]
OPENSSL_REASONS = {
    RevocationReason.KEY_COMPROMISE: "keyCompromise",
    RevocationReason.SUPERSEDED: "superseded",
    RevocationReason.CESSATION_OF_OPERATION: "cessationOfOperation",
}
CHUNK = 50_000


def _progress(text: str) -> None:
    print(f"bench crl: {text}", file=sys.stderr, flush=True)


Entry = tuple[int, int, RevocationReason]  # serial, revoked_at, reason


def _entries(rng: random.Random, n: int, now: int) -> list[Entry]:
    return [
        (rng.getrandbits(127) | (1 << 126), now - rng.randrange(86400 * 30), REASONS[i % 4])
        for i in range(n)
    ]


def _load(store: Store, issuer: bytes, entries: list[Entry], partition_of: Any) -> None:
    not_after = int(time.time()) + 200 * 86400
    for start in range(0, len(entries), CHUNK):
        part = entries[start : start + CHUNK]

        def op(txn: WriteTxn, part: list[Entry] = part) -> None:
            for serial, at, reason in part:
                txn.add_crl_entry(
                    issuer,
                    partition_of(serial),
                    serial.to_bytes(16, "big"),
                    not_after=not_after,
                    at=at,
                    entry_der=revoked_entry(serial, dt.datetime.fromtimestamp(at, dt.UTC), reason),
                )

        store.write(op)


async def _timed(coro: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    value = await coro
    return time.perf_counter() - started, value


async def _hanko(cfg: Config, store: Store, out: Path, issuer: bytes, n: int) -> dict[str, Any]:
    pool = signer_pool(cfg, workers=1)
    writer = store_writer(cfg, store)
    report: dict[str, Any] = {}
    async with trio.open_nursery() as nursery:
        await nursery.start(writer.run)
        await nursery.start(pool.run)
        publisher: CrlPublisher = crl_publisher(
            cfg, signer=pool, store=store, writer=writer, clock=SystemClock(), directory=out
        )
        publisher.deltas = True  # the benchmark measures deltas whatever the profiles say

        async def full(p: int) -> PublishedCrl:
            return (await publisher.publish_full(p))[0]

        seconds, crl = await _timed(full(0))
        report["full_1m_first"] = {"seconds": seconds, "phases": crl.phases}
        # The first build after the bulk load pays for mapping the store's pages into
        # this process; the updater's builds find them mapped. Report both.
        seconds, crl = await _timed(full(0))
        report["full_1m"] = {
            "seconds": seconds,
            "entries": crl.entries,
            "bytes": crl.size,
            "phases": crl.phases,
        }
        tracemalloc.start()
        tracemalloc.reset_peak()
        await full(0)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        report["full_1m"]["peak_bytes"] = peak
        started = time.perf_counter()
        sizes = [await full(p) for p in range(1, 65)]
        report["full_64"] = {
            "seconds": time.perf_counter() - started,
            "entries": sum(c.entries for c in sizes),
            "bytes": sum(c.size for c in sizes),
        }
        rng = random.Random(7)
        new = _entries(rng, 1000, int(time.time()))
        _load(store, issuer, new[:500], lambda s: 0)
        _load(store, issuer, new[500:], lambda s: 1 + s % 64)
        seconds, delta = await _timed(publisher.publish_delta(0))
        report["delta_after_1000"] = {
            "seconds": seconds,
            "entries": delta.entries,
            "bytes": delta.size,
            "note": "partition 0 after 500 of the 1,000 new revocations landed in it",
        }
        seconds, crl = await _timed(full(0))
        report["rebuild_1m_after_1000"] = {"seconds": seconds, "entries": crl.entries}
        jobs = [
            j
            for j in publisher.due(change_delay=dt.timedelta(0), cadence=dt.timedelta(days=1))
            if j.partition != 0
        ]
        started = time.perf_counter()
        rebuilt = await publisher.run(jobs)
        report["rebuild_changed_of_64_after_1000"] = {
            "seconds": time.perf_counter() - started,
            "partitions": len({c.partition for c in rebuilt}),
            "files": len(rebuilt),
        }
        nursery.cancel_scope.cancel()
    return report


def _openssl(work: Path, entries: list[Entry], n: int) -> dict[str, Any]:
    """`openssl ca -gencrl` over an index of the same entries (written untimed)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "bench CA")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=9))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    (work / "ca.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (work / "ca.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    expiry = (now + dt.timedelta(days=200)).strftime("%y%m%d%H%M%SZ")
    with open(work / "index.txt", "w") as fh:
        for serial, at, reason in entries[:n]:
            when = dt.datetime.fromtimestamp(at, dt.UTC).strftime("%y%m%d%H%M%SZ")
            why = OPENSSL_REASONS.get(reason)
            revoked = f"{when},{why}" if why else when
            fh.write(f"R\t{expiry}\t{revoked}\t{serial:X}\tunknown\t/CN=x\n")
    (work / "crlnumber").write_text("01\n")
    (work / "openssl.cnf").write_text(
        "[ca]\ndefault_ca = bench\n[bench]\n"
        f"database = {work}/index.txt\ncrlnumber = {work}/crlnumber\n"
        f"certificate = {work}/ca.pem\nprivate_key = {work}/ca.key\n"
        "default_md = sha256\ndefault_crl_days = 7\ncrl_extensions = ext\n"
        "[ext]\nauthorityKeyIdentifier = keyid:always\n"
    )
    return _child(
        [
            "openssl",
            "ca",
            "-gencrl",
            "-config",
            str(work / "openssl.cnf"),
            "-out",
            str(work / "openssl.crl"),
            "-batch",
        ]
    )


# A child's ru_maxrss includes the memory of the process it was forked from (Linux
# carries the old image's high-water mark across exec), and this process holds millions
# of entries. So a small launcher starts the contender: a grandchild born of a small
# process reports its own peak.
_LAUNCHER = """
import json, resource, subprocess, sys, time
started = time.perf_counter()
proc = subprocess.run(sys.argv[1:], capture_output=True)
seconds = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
print(json.dumps({"seconds": seconds, "peak_rss_bytes": peak, "code": proc.returncode,
                  "out": proc.stdout.decode(), "err": proc.stderr.decode()[-300:]}))
"""


def _child(argv: list[str]) -> dict[str, Any]:
    raw = subprocess.run(
        [sys.executable, "-c", _LAUNCHER, *argv], capture_output=True, check=True
    ).stdout
    result = json.loads(raw)
    if result["code"] != 0:
        raise RuntimeError(f"{argv[0]} failed: {result['err']}")
    report: dict[str, Any] = {
        "seconds": result["seconds"],
        "peak_rss_bytes": result["peak_rss_bytes"],
    }
    if result["out"].strip():
        report.update(json.loads(result["out"]))
    return report


def cryptography_child(path: str) -> None:
    """In a child process: the CRL from cryptography's builder, list given at construction."""
    raw = Path(path).read_bytes()
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "bench CA")])
    now = dt.datetime.now(dt.UTC)
    codes = {r.value: r for r in RevocationReason}
    flags = {
        RevocationReason.KEY_COMPROMISE: x509.ReasonFlags.key_compromise,
        RevocationReason.SUPERSEDED: x509.ReasonFlags.superseded,
        RevocationReason.CESSATION_OF_OPERATION: x509.ReasonFlags.cessation_of_operation,
    }
    started = time.perf_counter()
    revoked = []
    for pos in range(0, len(raw), 25):
        serial = int.from_bytes(raw[pos : pos + 16], "big")
        at = int.from_bytes(raw[pos + 16 : pos + 24], "big")
        reason = codes[raw[pos + 24]]
        b = (
            x509.RevokedCertificateBuilder()
            .serial_number(serial)
            .revocation_date(dt.datetime.fromtimestamp(at, dt.UTC))
        )
        if reason in flags:
            b = b.add_extension(x509.CRLReason(flags[reason]), critical=False)
        revoked.append(b.build())
    objects = time.perf_counter() - started
    rss_before = _rss()
    started = time.perf_counter()
    crl = x509.CertificateRevocationListBuilder(
        issuer_name=name,
        last_update=now,
        next_update=now + dt.timedelta(days=7),
        revoked_certificates=revoked,
    ).sign(key, hashes.SHA256())
    der = crl.public_bytes(serialization.Encoding.DER)
    build = time.perf_counter() - started
    print(
        json.dumps(
            {
                "objects_seconds": objects,
                "build_seconds": build,
                "bytes": len(der),
                "rss_before_bytes": rss_before,
            }
        )
    )


def _rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def run(cfg: Config, *, certs: int, workdir: Path) -> dict[str, Any]:
    cfg = msgspec.structs.replace(
        cfg,
        store=msgspec.structs.replace(cfg.store, path=str(workdir / "lmdb")),
        crl=msgspec.structs.replace(cfg.crl, partitions=65),
    )
    issuer_cert = x509.load_pem_x509_certificate(
        cfg.path(cfg.issuers()[0].config.cert).read_bytes()
    )
    issuer = issuer_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    rng = random.Random(20261121)
    now = int(time.time())
    single, spread = _entries(rng, certs, now), _entries(rng, certs, now)
    store = LmdbStore(workdir / "lmdb", create=True, map_size=cfg.store.map_size.bytes)
    try:
        started = time.perf_counter()
        _load(store, issuer, single, lambda s: 0)
        _load(store, issuer, spread, lambda s: 1 + s % 64)
        _progress(f"stored {2 * certs:,} revocations in {time.perf_counter() - started:.1f} s")
        report: dict[str, Any] = {
            "entries": certs,
            "hanko": trio.run(_hanko, cfg, store, workdir / "out", issuer, certs),
        }
    finally:
        store.close()
    _progress("openssl ca -gencrl")
    report["openssl"] = _openssl(workdir, single, certs)
    _progress("cryptography builder")
    packed = workdir / "entries.bin"
    packed.write_bytes(
        b"".join(
            s.to_bytes(16, "big") + at.to_bytes(8, "big") + bytes((r.value,)) for s, at, r in single
        )
    )
    report["cryptography"] = _child(
        [
            sys.executable,
            "-c",
            f"from bench.crl_load import cryptography_child as c; c({str(packed)!r})",
        ]
    )
    h, o, c = report["hanko"], report["openssl"], report["cryptography"]
    size = h["full_1m"]["bytes"]
    report["ratios"] = {
        "openssl_over_hanko": o["seconds"] / h["full_1m"]["seconds"],
        "cryptography_over_hanko": c["build_seconds"] / h["full_1m"]["seconds"],
        "hanko_peak_over_crl_size": h["full_1m"]["peak_bytes"] / size,
        "openssl_peak_over_crl_size": o["peak_rss_bytes"] / size,
        "cryptography_peak_over_crl_size": (c["peak_rss_bytes"] - c["rss_before_bytes"]) / size,
    }
    report["aims"] = {
        "full_1m_at_most_1s": h["full_1m"]["seconds"] <= 1.0,
        "at_least_3x_openssl": report["ratios"]["openssl_over_hanko"] >= 3.0,
        "delta_at_most_20ms": h["delta_after_1000"]["seconds"] <= 0.020,
        "peak_at_most_2x_crl": report["ratios"]["hanko_peak_over_crl_size"] <= 2.0,
    }
    return report


def _print_text(r: dict[str, Any]) -> None:
    h, o, c, x = r["hanko"], r["openssl"], r["cryptography"], r["ratios"]
    mb = 1 << 20
    full = h["full_1m"]
    lines = [
        f"CRL of {r['entries']:,} entries, one partition ({full['bytes'] / mb:.1f} MiB)",
        f"  hanko (first build after the load)  {h['full_1m_first']['seconds']:.3f} s",
        f"  hanko         {full['seconds']:.3f} s   Python heap peak"
        f" {full['peak_bytes'] / mb:.1f} MiB ({x['hanko_peak_over_crl_size']:.2f}x the CRL)",
        f"  openssl ca    {o['seconds']:.3f} s   peak RSS {o['peak_rss_bytes'] / mb:.1f} MiB"
        f"   -> hanko {x['openssl_over_hanko']:.1f}x faster",
        f"  cryptography  {c['build_seconds']:.3f} s   (+{c['objects_seconds']:.1f} s for its"
        f" objects)   -> hanko {x['cryptography_over_hanko']:.1f}x faster",
        f"64 partitions, {h['full_64']['entries']:,} entries: {h['full_64']['seconds']:.3f} s",
        f"delta after 1,000 new revocations: {h['delta_after_1000']['seconds'] * 1000:.1f} ms"
        f" ({h['delta_after_1000']['entries']} entries)",
        f"1M partition rebuilt after them: {h['rebuild_1m_after_1000']['seconds']:.3f} s",
        f"changed partitions of the 64 rebuilt:"
        f" {h['rebuild_changed_of_64_after_1000']['seconds']:.3f} s"
        f" ({h['rebuild_changed_of_64_after_1000']['partitions']} partitions)",
        "aims: " + ", ".join(f"{k} {'met' if v else 'NOT met'}" for k, v in r["aims"].items()),
    ]
    print("\n".join(lines))


def run_from_cli(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    with tempfile.TemporaryDirectory(prefix="hanko-bench-crl-") as tmp:
        report = run(cfg, certs=args.entries, workdir=Path(tmp))
    maybe_write(args, "crl", report)
    if args.json:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    else:
        _print_text(report)
    return 0
