"""Revocation to served, for `hanko bench ocsp`: revoke through the issuance engine (a
signature and a durable commit), then poll a responder until it answers "revoked"."""

from __future__ import annotations

import base64
import gc
import time
import urllib.parse
from typing import Any

import httpx
import trio
from cryptography.x509 import ocsp

from core.base.errors import HankoError
from core.issuance.engine import IssuanceEngine

POLL_EVERY = 0.002
GIVE_UP = 5.0


async def revoke_and_poll(
    engine: IssuanceEngine, reqs: list[tuple[bytes, bytes, bytes]], port: int
) -> list[float]:
    """Milliseconds from each revocation's return to the responder serving it.

    The poller shares this process with the CA side it measures (the engine, and the
    replicator when there is one), and its HTTP requests leave cyclic garbage: with
    the core's collector threshold (core/main.py) a collection of it stopped this
    process for 200-800 ms here, replicator included, once every few dozen
    revocations. So the garbage is collected before each revocation and the
    collector paused until it is served: what is timed is the CA and the responder,
    not the poller's garbage."""
    latencies: list[float] = []
    async with httpx.AsyncClient() as client:
        for serial, der, _ in reqs:
            url = f"http://127.0.0.1:{port}/ocsp/" + urllib.parse.quote(
                base64.b64encode(der).decode(), safe=""
            )
            before = (await client.get(url)).content
            gc.collect()
            gc.disable()
            try:
                await engine.revoke(serial.hex(), "cessationOfOperation", actor="bench")
                returned = time.perf_counter()
                while not _revoked(body := (await client.get(url)).content, before):
                    if time.perf_counter() - returned > GIVE_UP:
                        raise HankoError(f"a revocation was not served within {GIVE_UP:g} s")
                    await trio.sleep(POLL_EVERY)
                latencies.append((time.perf_counter() - returned) * 1000)
            finally:
                gc.enable()
            del body
    return latencies


def _revoked(body: bytes, before: bytes) -> bool:
    if body == before:  # the answer cached before the revocation: not parsed again
        return False
    resp = ocsp.load_der_ocsp_response(body)
    return (
        resp.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
        and resp.certificate_status is ocsp.OCSPCertStatus.REVOKED
    )


def summary(latencies: list[float]) -> dict[str, Any]:
    ordered = sorted(latencies)
    n = len(ordered)
    return {
        "revocations": n,
        "p50_ms": round(ordered[n // 2], 1),
        "p99_ms": round(ordered[min(n - 1, int(n * 0.99))], 1),
        "max_ms": round(ordered[-1], 1),
        # In the order they were revoked: where a slow one falls says what it met.
        "slowest": [
            (i, round(ms, 1)) for i, ms in sorted(enumerate(latencies), key=lambda x: -x[1])[:3]
        ],
    }
