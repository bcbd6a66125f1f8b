"""What `hanko serve` tells operators: Prometheus metrics on `[metrics] listen` and the
API's access log.

Events that need a distribution (a request's duration, a commit's, a signer batch's
size) are observed as they happen through the components' hooks; everything else is
read from the components' `statistics()` when Prometheus scrapes, so the hot paths
carry no metrics code at all. The OCSP counters are the sum over the responder
processes, which report theirs once a second. /metrics is served by the API's own
HTTP/1.1 listener (connection cap and deadlines included): in plain HTTP on loopback,
and off loopback only over TLS with a bearer token or client certificates (check-config
refuses less). Per-account series (licence balances) only with `[metrics] per_account`.
"""

from __future__ import annotations

import hmac
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import prometheus_client
import trio
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily
from prometheus_client.registry import Collector

from core.access.roles import Capability, Principal
from core.api.http_errors import HttpError
from core.api.router import Answered, App, Observer, Raw, Request, Route
from core.api.server import ApiListener, ListenerSettings, PeerCertificates
from core.config import Config, parse_listen, read_secret

access = logging.getLogger("hanko.access")
log = logging.getLogger("hanko")

_LATENCY = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
_TEXT = b"text/plain; version=0.0.4; charset=utf-8"
# Licence gauges are read from the store at each scrape: at most this many licences.
MAX_LICENSES = 10_000

Source = Callable[[], Any]


class Metrics:
    def __init__(self) -> None:
        # A *_created series per counter doubles the scrape for a value nobody reads.
        prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry(auto_describe=False)
        r = self.registry
        self.api_requests = Counter(
            "hanko_api_requests", "API requests answered", ["route", "method", "status"], registry=r
        )
        self.api_seconds = Histogram(
            "hanko_api_request_duration_seconds",
            "API request duration",
            ["route"],
            buckets=_LATENCY,
            registry=r,
        )
        self.issuance = Counter(
            "hanko_issuance",
            "Issuance requests by profile and result",
            ["profile", "result"],
            registry=r,
        )
        self.issuance_seconds = Histogram(
            "hanko_issuance_duration_seconds",
            "Issuance duration (a batch's, per request)",
            ["profile"],
            buckets=_LATENCY,
            registry=r,
        )
        self.commit_seconds = Histogram(
            "hanko_store_commit_duration_seconds",
            "Durable store commit duration",
            buckets=_LATENCY,
            registry=r,
        )
        self.commit_group = Histogram(
            "hanko_store_commit_group_size", "Writes per group commit", buckets=_SIZES, registry=r
        )
        self.signer_batch = Histogram(
            "hanko_signer_batch_size", "Signatures per signer batch", buckets=_SIZES, registry=r
        )
        self.sources: dict[str, Source] = {}
        self._api_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self.crl_dir: Path | None = None
        self.licenses: Callable[[], Iterator[tuple[str, str, str, str, int]]] | None = None
        r.register(_FromStatistics(self))

    def issued(self, profile: str, result: str, seconds: float) -> None:
        self.issuance.labels(profile, result).inc()
        self.issuance_seconds.labels(profile).observe(seconds)

    def committed(self, ops: int, seconds: float) -> None:
        self.commit_seconds.observe(seconds)
        self.commit_group.observe(ops)

    def answered(self, a: Answered) -> None:
        # The labelled children, looked up once per (route, method, status): labels()
        # takes a lock and builds its key on every call.
        key = (a.route, a.method, a.status)
        children = self._api_children.get(key)
        if children is None:
            children = self._api_children[key] = (
                self.api_requests.labels(a.route, a.method, str(a.status)),
                self.api_seconds.labels(a.route),
            )
        children[0].inc()
        children[1].observe(a.seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=value)


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


class _FromStatistics(Collector):
    """The components' statistics() as metrics, read at each scrape."""

    def __init__(self, metrics: Metrics) -> None:
        self._m = metrics

    def collect(self) -> Iterator[Any]:
        src = self._m.sources
        for name, read in src.items():
            try:
                yield from getattr(self, f"_{name}")(read())
            except Exception:  # a scrape must never take the service down
                log.exception("metrics: reading %s failed", name)
        yield from self._crl_files()
        yield from self._license_balances()

    def _signer(self, s: Any) -> Iterator[Any]:
        yield _gauge("hanko_signer_queue_depth", "Signatures waiting for a worker", s.queued)
        yield _counter("hanko_signer_batches", "Signer batches answered", s.batches)
        yield _counter("hanko_signer_signatures", "Signatures made", s.signatures)
        yield _counter("hanko_signer_errors", "Signatures that failed", s.errors)
        yield _counter("hanko_signer_retries", "Batches retried on another worker", s.retried)
        yield _counter("hanko_signer_worker_restarts", "Signer workers replaced", s.restarts)
        yield _gauge(
            "hanko_signer_workers_alive", "Signer workers up", sum(w.alive for w in s.workers)
        )

    def _writer(self, s: Any) -> Iterator[Any]:
        yield _counter("hanko_store_commits", "Durable group commits", s.commits)
        yield _counter("hanko_store_writes", "Writes committed", s.ops)
        yield _counter("hanko_store_writes_failed", "Writes refused or failed", s.failed_ops)
        yield _gauge("hanko_store_write_queue", "Writes waiting for a commit", s.queued)
        yield _gauge("hanko_store_full", "1 when the map is at max_map_size", int(s.full))

    def _leader(self, s: Any) -> Iterator[Any]:
        yield _gauge(
            "hanko_leader", "1 while this process holds the store's leader lock", int(s.leader)
        )
        yield _counter("hanko_leader_terms", "Times this process became the leader", s.terms)

    def _store(self, s: dict[str, int]) -> Iterator[Any]:
        yield _gauge(
            "hanko_store_map_used_bytes",
            "Bytes of the store in use (LMDB: its map; PostgreSQL: the database's size)",
            s["used"],
        )
        yield _gauge("hanko_store_map_size_bytes", "Bytes of the LMDB map reserved", s["size"])
        yield _gauge("hanko_store_map_max_bytes", "[store] max_map_size", s["max"])

    def _issuance(self, s: Any) -> Iterator[Any]:
        yield _counter("hanko_certificates_issued", "Certificates committed", s.issued)
        yield _counter("hanko_certificates_revoked", "Revocations committed", s.revoked)

    def _caa(self, s: Any) -> Iterator[Any]:
        yield _counter(
            "hanko_caa_decisions", "CAA decisions made on records looked up", s.decisions
        )
        yield _counter(
            "hanko_caa_reused", "CAA permits reused (younger than [caa] reuse)", s.reused
        )
        yield _counter("hanko_caa_refused", "CAA decisions that refused issuance", s.refused)
        yield _counter("hanko_caa_lookup_failures", "CAA lookups that failed", s.failed)
        yield _counter("hanko_caa_queries", "DNS questions asked for CAA", s.queries)
        yield _counter(
            "hanko_caa_not_corroborated",
            "CAA permits the remote perspectives' quorum did not corroborate",
            s.not_corroborated,
        )

    def _mpic(self, s: Any) -> Iterator[Any]:
        yield _counter("hanko_mpic_attempts", "Corroboration requests sent", s.attempts)
        yield _counter("hanko_mpic_corroborated", "Checks the quorum corroborated", s.corroborated)
        yield _counter("hanko_mpic_refused", "Checks the quorum did not corroborate", s.refused)
        families: dict[str, CounterMetricFamily | GaugeMetricFamily] = {
            "answers": CounterMetricFamily(
                "hanko_mpic_perspective_answers", "Results received", labels=["perspective"]
            ),
            "disagreements": CounterMetricFamily(
                "hanko_mpic_perspective_disagreements",
                "Results that did not corroborate the primary",
                labels=["perspective"],
            ),
            "unreachable": CounterMetricFamily(
                "hanko_mpic_perspective_unreachable",
                "Requests without a usable answer (down, refused, late)",
                labels=["perspective"],
            ),
            "reachable": GaugeMetricFamily(
                "hanko_mpic_perspective_reachable",
                "1 when its last answer or probe came back",
                labels=["perspective"],
            ),
        }
        latency = SummaryMetricFamily(
            "hanko_mpic_perspective_latency_seconds",
            "Time to a perspective's answer",
            labels=["perspective"],
        )
        for p in s.perspectives:
            for key, family in families.items():
                family.add_metric([p.code], float(getattr(p, key)))
            answered = p.requests - p.unreachable
            latency.add_metric([p.code], count_value=answered, sum_value=p.seconds)
        yield from families.values()
        yield latency

    def _responders(self, s: Any) -> Iterator[Any]:
        answers = CounterMetricFamily(
            "hanko_ocsp_responses", "OCSP answers by kind", labels=["answer"]
        )
        for answer in ("successful", "malformed_request", "unauthorized", "try_later"):
            answers.add_metric([answer], s.counts.get(answer, 0))
        yield answers
        ok, misses = s.counts.get("successful", 0), s.counts.get("cache_misses", 0)
        yield _counter(
            "hanko_ocsp_cache_hits",
            "OCSP answers from the responders' cache",
            max(0, ok - min(ok, misses)),
        )
        yield _counter("hanko_ocsp_cache_misses", "OCSP requests looked up in the store", misses)
        yield _counter(
            "hanko_ocsp_not_modified", "OCSP answers 304", s.counts.get("not_modified", 0)
        )
        yield _counter(
            "hanko_status_files_served", "CRLs and CA certificates served", s.counts.get("files", 0)
        )
        yield _counter(
            "hanko_status_not_found", "Status listener 404s", s.counts.get("not_found", 0)
        )
        yield _counter(
            "hanko_status_connections_shed",
            "Idle connections closed at the cap",
            s.counts.get("shed", 0),
        )
        yield _counter(
            "hanko_status_connections_refused_per_client",
            "Status connections closed at once: their address held its cap",
            s.counts.get("refused_per_client", 0),
        )
        yield _gauge("hanko_ocsp_responders_alive", "Responder processes up", s.alive)
        yield _counter("hanko_ocsp_responder_restarts", "Responder processes restarted", s.restarts)

    def _ct(self, s: Any) -> Iterator[Any]:
        labels = ["log", "operator"]
        per_log = {
            "submissions": ("hanko_ct_submissions", "Submissions to a CT log"),
            "scts": ("hanko_ct_scts", "Valid SCTs received from a CT log"),
            "failures": ("hanko_ct_failures", "CT submissions failed (timeouts too)"),
            "invalid": ("hanko_ct_invalid_scts", "SCTs or answers that did not verify"),
            "timeouts": ("hanko_ct_timeouts", "CT submissions unanswered at the deadline"),
            "abandoned": ("hanko_ct_abandoned", "CT submissions not needed once enough came"),
        }
        for field, (name, doc) in per_log.items():
            family = CounterMetricFamily(name, doc, labels=labels)
            for entry in s.logs:
                family.add_metric([entry.url, entry.operator], getattr(entry, field))
            yield family
        latency = SummaryMetricFamily(
            "hanko_ct_answer_seconds", "Time to a CT log's answer", labels=labels
        )
        for entry in s.logs:
            latency.add_metric([entry.url, entry.operator], entry.answered, entry.seconds)
        yield latency
        yield _counter(
            "hanko_ct_precertificates", "Precertificates submitted to CT logs", s.precertificates
        )
        yield _counter(
            "hanko_ct_unavailable",
            "Precertificates without the SCTs they needed by the deadline",
            s.unavailable,
        )
        yield _counter(
            "hanko_ct_finals_dropped", "Final certificates not submitted", s.finals_dropped
        )

    def _replication(self, s: Any) -> Iterator[Any]:
        yield _gauge("hanko_replication_connected", "1 while Redis takes the feed", s.connected)
        yield _gauge("hanko_replication_lag", "Committed status changes not in Redis yet", s.lag)
        yield _counter("hanko_replication_changes", "Status changes written to Redis", s.changes)
        yield _counter("hanko_replication_errors", "Failed attempts to write to Redis", s.errors)
        yield _counter("hanko_replication_resyncs", "Redis rebuilt from the store", s.resyncs)

    def _refresher(self, s: Any) -> Iterator[Any]:
        yield _counter("hanko_ocsp_refreshed", "OCSP responses re-signed", s.refreshed)
        yield _counter("hanko_ocsp_refresh_failures", "OCSP re-signing failures", s.failed)

    def _crl(self, s: Any) -> Iterator[Any]:
        yield _counter("hanko_crl_builds_failed", "CRL builds that failed", s.failures)
        build = GaugeMetricFamily(
            "hanko_crl_build_seconds", "The last build of each CRL", labels=["crl"]
        )
        for name, seconds in sorted(s.build_seconds.items()):
            build.add_metric([name], seconds)
        yield build

    def _notify(self, s: dict[str, Any]) -> Iterator[Any]:
        n, o = s["notifier"], s["outbox"]
        yield _counter("hanko_webhook_attempts", "Webhook deliveries tried", n.attempts)
        yield _counter("hanko_webhook_delivered", "Webhook events delivered", n.delivered)
        yield _counter(
            "hanko_webhook_failed_attempts", "Webhook deliveries that failed", n.failed_attempts
        )
        yield _counter("hanko_webhook_given_up", "Webhook events given up", n.given_up)
        yield _gauge("hanko_webhook_pending", "Events in the outbox not yet delivered", o.pending)

    def _listener(self, s: Any) -> Iterator[Any]:
        yield _gauge("hanko_api_open_connections", "Open API connections", s.open_connections)
        yield _counter("hanko_api_connections", "API connections accepted", s.accepted)
        yield _counter(
            "hanko_api_tls_handshakes_failed", "TLS handshakes that failed", s.handshakes_failed
        )
        yield _counter(
            "hanko_api_connections_refused_per_client",
            "API connections closed at once: their address held its cap",
            s.refused_per_client,
        )
        yield _gauge("hanko_api_buffered_bytes", "Request body bytes held", s.buffered_bytes)

    def _crl_files(self) -> Iterator[Any]:
        if self._m.crl_dir is None:
            return
        age = GaugeMetricFamily(
            "hanko_crl_age_seconds", "Seconds since each CRL's thisUpdate", labels=["crl"]
        )
        now = time.time()
        with os.scandir(self._m.crl_dir) as it:
            for entry in sorted(it, key=lambda e: e.name):
                if entry.name.endswith(".crl") and not entry.name.startswith("."):
                    age.add_metric([entry.name], now - entry.stat().st_mtime)
        yield age

    def _license_balances(self) -> Iterator[Any]:
        if self._m.licenses is None:
            return
        available = GaugeMetricFamily(
            "hanko_license_available",
            "Licence units available",
            labels=["account", "license", "kind", "unit"],
        )
        for n, (account, lic, kind, unit, value) in enumerate(self._m.licenses()):
            if n >= MAX_LICENSES:
                break
            available.add_metric([account, lic, kind, unit], value)
        yield available


def observer(cfg: Config, metrics: Metrics | None) -> Observer:
    """The API's per-request hook: the access log line and the request metrics."""
    log_access = cfg.log.access_log

    def observe(a: Answered) -> None:
        if metrics is not None:
            metrics.answered(a)
        if log_access and access.isEnabledFor(logging.INFO):
            access.info(
                "%s %s %d %.1fms",
                a.method,
                a.path,
                a.status,
                a.seconds * 1000,
                extra={
                    "event": "http.request",
                    "method": a.method,
                    "route": a.route,
                    "path": a.path,
                    "status": a.status,
                    "duration_ms": round(a.seconds * 1000, 2),
                    "key_id": a.key_id,
                    "client": a.client,
                    "request_id": a.request_id,
                },
            )

    return observe


class ScrapeToken:
    """The scraper's bearer token ([metrics] token): the one credential /metrics takes."""

    def __init__(self, token: str) -> None:
        self._token = token.encode()

    def principal(self, scope: Mapping[str, Any]) -> Principal:
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, given = bytes(value).partition(b" ")
                if scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), self._token):
                    return Principal(id="metrics-scraper", role="reader", accounts=frozenset())
        raise HttpError(
            401,
            "unauthenticated",
            "send Authorization: Bearer <the metrics token>",
            headers=[(b"www-authenticate", b"Bearer")],
        )

    def set_admin_token(self, token: str) -> None:  # the API's, not the scraper's
        return None


class MetricsEndpoint:
    """GET /metrics on its own listener: TLS and a credential when configured."""

    def __init__(self, metrics: Metrics, cfg: Config) -> None:
        m = cfg.metrics
        host, port = parse_listen(m.listen)

        def file(value: str | None) -> str | None:
            return None if value is None else str(cfg.path(value))

        self._listener = ApiListener(
            ListenerSettings(
                host=host,
                port=port,
                tls_cert=file(m.tls_cert),
                tls_key=file(m.tls_key),
                client_ca=file(m.client_ca),
                max_connections=64,
                max_connections_per_client=16,
                max_buffered=1 << 20,
                setting="metrics.listen",
            ),
            peers=PeerCertificates(),
        )

        async def scrape(request: Request) -> tuple[int, Any]:
            return 200, Raw(metrics.exposition(), _TEXT)

        auth = ScrapeToken(read_secret(cfg, m.token)) if m.token is not None else None
        need: Capability | None = "read" if auth is not None else None
        self._app = App([Route("GET", "/metrics", need, scrape, max_body=0)], auth)

    async def run(
        self, *, task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED
    ) -> None:
        await self._listener.run(self._app, task_status=task_status)
