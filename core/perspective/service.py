"""A remote perspective's service: the API listener of hanko (connection caps, header
and body deadlines, bounded buffers) in mutual TLS only, with four routes:

- `POST /v1/checks`: a batch of checks (core/mpic/messages.py), answered when all are
  done or the request's deadline has passed;
- `GET /healthz`; `GET /readyz`: 503 with the reason when this perspective's resolver
  does not answer;
- `GET /metrics`: Prometheus text (requests, checks passed and failed, running,
  latency), for a scraper holding a client certificate from the same CA.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import trio
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from core.api.router import App, Raw, Request, Route
from core.api.server import ApiListener
from core.dns import wire
from core.dns.resolver import DnsError
from core.mpic.messages import PATH, CheckReply, CheckRequest
from core.perspective.checks import Checker

_TEXT = b"text/plain; version=0.0.4; charset=utf-8"
_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
READY_FRESH = 1.0  # seconds a resolver probe's answer is reused (load balancers ask often)


class ResolverProbe:
    """Whether this perspective's resolver answers (a question for the root's NS)."""

    def __init__(self, checker: Checker, deadline: float = 2.0) -> None:
        self._checker = checker
        self._deadline = deadline
        self._at = -READY_FRESH
        self._why: str | None = None
        self._lock = trio.Lock()

    async def problem(self) -> str | None:
        async with self._lock:
            if trio.current_time() - self._at < READY_FRESH:
                return self._why
            why: str | None = f"the resolver did not answer within {self._deadline:g} s"
            with trio.move_on_after(self._deadline):
                try:
                    await self._checker.resolver.client.ask(".", wire.TYPES["NS"])
                    why = None
                except DnsError as exc:
                    why = f"the resolver failed: {exc.message}"
            self._why, self._at = why, trio.current_time()
            return why


class _Collector(Collector):
    def __init__(self, checker: Checker, listener: ApiListener | None) -> None:
        self._checker = checker
        self._listener = listener

    def collect(self) -> Iterator[Any]:
        s = self._checker.statistics()
        for name, doc, value in (
            ("hanko_perspective_requests", "Check requests answered", s.requests),
            ("hanko_perspective_checks_passed", "Checks that saw what proves control", s.passed),
            ("hanko_perspective_checks_failed", "Checks that did not", s.failed),
            (
                "hanko_perspective_attempts_refused",
                "Requests reusing an attempt id",
                s.refused_attempts,
            ),
        ):
            yield CounterMetricFamily(name, doc, value=value)
        yield GaugeMetricFamily(
            "hanko_perspective_checks_running", "Checks under way", value=s.running
        )
        if self._listener is not None:
            ls = self._listener.statistics()
            yield GaugeMetricFamily(
                "hanko_perspective_open_connections", "Open connections", value=ls.open_connections
            )
            yield CounterMetricFamily(
                "hanko_perspective_handshakes_failed",
                "TLS handshakes that failed (a client without a certificate of the CA)",
                value=ls.handshakes_failed,
            )


def build_app(
    checker: Checker, *, code: str, rir: str, max_body: int, listener: ApiListener | None = None
) -> App:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(checker, listener))
    seconds = Histogram(
        "hanko_perspective_request_duration_seconds",
        "Time to answer a check request",
        buckets=_LATENCY,
        registry=registry,
    )
    probe = ResolverProbe(checker)

    async def checks(request: Request) -> tuple[int, Any]:
        asked = await request.json(CheckRequest)
        started = time.monotonic()
        results = await checker.run(asked)
        seconds.observe(time.monotonic() - started)
        return 200, CheckReply(attempt=asked.attempt, perspective=code, rir=rir, results=results)

    async def healthz(request: Request) -> tuple[int, Any]:
        return 200, {"status": "ok", "perspective": code}

    async def readyz(request: Request) -> tuple[int, Any]:
        why = await probe.problem()
        body = {"ready": why is None, "perspective": code, **({"reason": why} if why else {})}
        return (200 if why is None else 503), body

    async def metrics(request: Request) -> tuple[int, Any]:
        return 200, Raw(generate_latest(registry), content_type=_TEXT)

    routes = [
        Route("POST", PATH, None, checks, max_body=max_body),
        Route("GET", "/healthz", None, healthz),
        Route("GET", "/readyz", None, readyz),
        Route("GET", "/metrics", None, metrics),
    ]
    # No route needs a credential of the API's kind: the listener admits only clients
    # with a certificate from the internal TLS CA.
    return App(routes, None)
