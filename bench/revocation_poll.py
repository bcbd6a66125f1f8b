"""Revocation to served, for `hanko bench ocsp`: revoke through the issuance engine (a
signature and a durable commit), then poll a responder until it answers "revoked"."""

from __future__ import annotations

import base64
import time
import urllib.parse

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
    """Milliseconds from each revocation's return to the responder serving it."""
    latencies: list[float] = []
    async with httpx.AsyncClient() as client:
        for serial, der, _ in reqs:
            url = f"http://127.0.0.1:{port}/ocsp/" + urllib.parse.quote(
                base64.b64encode(der).decode(), safe=""
            )
            await engine.revoke(serial.hex(), "cessationOfOperation", actor="bench")
            returned = time.perf_counter()
            while True:
                r = await client.get(url)
                resp = ocsp.load_der_ocsp_response(r.content)
                if (
                    resp.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
                    and resp.certificate_status is ocsp.OCSPCertStatus.REVOKED
                ):
                    latencies.append((time.perf_counter() - returned) * 1000)
                    break
                if time.perf_counter() - returned > GIVE_UP:
                    raise HankoError(f"a revocation was not served within {GIVE_UP:g} s")
                await trio.sleep(POLL_EVERY)
    return latencies


def summary(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    n = len(ordered)
    return {
        "revocations": n,
        "p50_ms": round(ordered[n // 2], 1),
        "p99_ms": round(ordered[min(n - 1, int(n * 0.99))], 1),
        "max_ms": round(ordered[-1], 1),
    }
