"""The service `hanko serve` runs: wires the store writer, the signer pool, the API
listener (TLS) and the status listener (OCSP and CRLs, plain HTTP) into one trio
process tree. Every task lives in one nursery. SIGTERM or SIGINT drains the API and
then stops everything cleanly; SIGHUP reloads what can change while serving
(core/cmd/control.py)."""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec
import trio

from core.acme.challenges import ChallengeRunner
from core.acme.nonces import Nonces
from core.acme.ra import RegistrationAuthority
from core.api import acme_eab, rpc
from core.api import api_keys as keys_http
from core.api import certs_search as search_http
from core.api import dcv as dcv_http
from core.api import licenses as licenses_http
from core.api import renewals as renewals_http
from core.api import webhooks as webhooks_http
from core.api.acme import AcmeFrontEnd
from core.api.auth import Authenticator
from core.api.router import App, Observer, Request, Route
from core.api.server import ApiListener, PeerCertificates
from core.base import logs
from core.base.clock import Clock, SystemClock
from core.cmd import telemetry
from core.cmd.control import Reloader, handle_signals
from core.cmd.issuer_reload import IssuerSwitch
from core.cmd.leadership import Leadership
from core.cmd.readiness import SignerProbe, readiness
from core.cmd.responder_renewal import keep_renewed
from core.cmd.service_metrics import watch
from core.cmd.sweeps import issue_renewals, notify_statistics, record_lapses, send_reminders
from core.cmd.wiring import (
    acme_base_url,
    acme_validator,
    crl_updater,
    eab_master,
    issuance_engine,
    license_settings,
    listener_settings,
    notifier,
    notify_master,
    ocsp_refresher,
    ra_settings,
    responder_processes,
    signer_pool,
    store_writer,
)
from core.cmd.wiring_dcv import domain_control
from core.cmd.wiring_issuers import crl_publishers, crl_url_list
from core.cmd.wiring_mpic import mpic_corroborator
from core.cmd.wiring_replication import replicator
from core.config import Config, read_secret
from core.issuance.engine import IssuanceEngine
from core.issuance.intake_pool import IntakePool
from core.licenses.desk import LicenseDesk
from core.mpic.client import Corroborator
from core.notify.delivery import Notifier
from core.replication.replicator import Replicator
from core.store import GroupCommitWriter, Store
from core.store.configured import open_store
from crl.updater import CrlUpdater
from ocsp.refresher import OcspRefresher
from ocsp.status.sources import STORE_PASSWORD_ENV
from ocsp.status.supervisor import ResponderProcesses
from signer.algorithms import KeyType
from signer.pool import SignerPool

log = logging.getLogger("hanko")


def build_app(
    cfg: Config,
    *,
    store: Store,
    writer: GroupCommitWriter,
    pool: SignerPool,
    clock: Clock,
    intake: IntakePool | None = None,
    refresher: OcspRefresher | None = None,
    crl_updater: CrlUpdater | None = None,
    responders: ResponderProcesses | None = None,
    peers: PeerCertificates | None = None,
    listener: ApiListener | None = None,
    background: list[Callable[..., Awaitable[None]]] | None = None,
    observe: Observer | None = None,
    metrics: telemetry.Metrics | None = None,
    leadership: Leadership | None = None,
    leader_jobs: list[Callable[[], Awaitable[None]]] | None = None,
    engines: list[IssuanceEngine] | None = None,
) -> App:
    """The API's routes; tasks they need running are appended to `background`, jobs
    only the leader runs to `leader_jobs`, the engine it built to `engines`."""
    background = background if background is not None else []
    corroborator = mpic_corroborator(cfg, clock)
    if corroborator is not None:
        background.append(corroborator.run)  # probes for /readyz; closes its client
        if metrics is not None:
            metrics.sources["mpic"] = corroborator.statistics
    engine = issuance_engine(
        cfg,
        signer=pool,
        store=store,
        writer=writer,
        clock=clock,
        intake=intake,
        ocsp_presigners=refresher.presigners if refresher is not None else None,
        observe=metrics.issued if metrics is not None else None,
        corroborator=corroborator,
    )
    if engines is not None:
        engines.append(engine)
    if metrics is not None:
        metrics.sources["issuance"] = engine.statistics
        if engine.caa is not None:
            metrics.sources["caa"] = engine.caa.statistics
    if leader_jobs is not None:
        leader_jobs.append(
            functools.partial(issue_renewals, engine, clock, cfg.issuance.renewal_sweep.seconds)
        )
    ct = engine.ct
    if ct is not None:
        background.append(ct.run)  # final certificates to the logs that take them
        if metrics is not None:
            metrics.sources["ct"] = ct.statistics

    desk = LicenseDesk(license_settings(cfg), clock)
    auth = Authenticator(
        store, clock, admin_token=read_secret(cfg, cfg.api.admin_token), peer_certificate=peers
    )

    async def healthz(request: Request) -> tuple[int, Any]:
        return 200, {"status": "ok"}

    probe = SignerProbe(
        pool,
        cfg.issuers()[0].config.ocsp_responder_key_label,
        KeyType(cfg.issuers()[0].config.key_type).default_algorithm,
    )

    async def readyz(request: Request) -> tuple[int, Any]:
        checks = await readiness(writer, probe, responders)
        reasons = {}
        if corroborator is not None:
            why = corroborator.readiness()
            checks["remote_perspectives"] = why is None
            if why is not None:
                reasons["remote_perspectives"] = why
        ready = all(checks.values())
        body = {"ready": ready, "checks": checks, **({"reasons": reasons} if reasons else {})}
        return (200 if ready else 503), body

    async def statistics(request: Request) -> tuple[int, Any]:
        return 200, {
            "api": msgspec.to_builtins(listener.statistics()) if listener is not None else None,
            "auth": msgspec.to_builtins(auth.statistics()),
            "signer": msgspec.to_builtins(pool.statistics()),
            "writer": msgspec.to_builtins(writer.statistics()),
            "store": store.stat(),
            "issuance": msgspec.to_builtins(engine.statistics()),
            "caa": msgspec.to_builtins(engine.caa.statistics()) if engine.caa else None,
            "mpic": msgspec.to_builtins(corroborator.statistics()) if corroborator else None,
            "intake": msgspec.to_builtins(intake.statistics()) if intake is not None else None,
            "ocsp_responders": (
                msgspec.to_builtins(responders.statistics()) if responders is not None else None
            ),
            "ocsp_refresher": (
                msgspec.to_builtins(refresher.statistics()) if refresher is not None else None
            ),
            "crl_updater": (
                msgspec.to_builtins(crl_updater.statistics()) if crl_updater is not None else None
            ),
            "ct": msgspec.to_builtins(ct.statistics()) if ct is not None else None,
            "leader": (
                msgspec.to_builtins(leadership.statistics()) if leadership is not None else None
            ),
        }

    async def crl_urls(request: Request) -> tuple[int, Any]:
        return 200, crl_url_list(cfg, store)

    acme = acme_routes(
        cfg,
        store=store,
        writer=writer,
        engine=engine,
        clock=clock,
        background=background,
        corroborator=corroborator,
    )
    routes = [
        *acme,
        Route("GET", "/healthz", None, healthz),
        Route("GET", "/readyz", None, readyz),
        Route("GET", "/v1/statistics", "admin", statistics),
        Route("GET", "/crl/urls.json", None, crl_urls),
        *rpc.routes(engine, store, writer, clock, desk, allow_attested=cfg.dcv.allow_attested),
        *dcv_http.routes(
            domain_control(cfg, store=store, writer=writer, clock=clock, corroborator=corroborator)
        ),
        *renewals_http.routes(engine, store),
        *licenses_http.routes(desk, store, writer),
        *keys_http.routes(store, writer, clock),
        *search_http.routes(store, lambda: {i.name: i.key_id for i in engine.issuers.all}, clock),
        *webhook_routes(cfg, writer, clock),
    ]
    # Paths under /acme/ that no route matched are refused as problem documents too.
    renderers = {"/acme/": acme[0].render} if acme and acme[0].render is not None else {}
    return App(routes, auth, observe, renderers)


def webhook_routes(cfg: Config, writer: GroupCommitWriter, clock: Clock) -> list[Route]:
    master = notify_master(cfg)
    if master is None:
        return []
    return webhooks_http.routes(
        writer, clock, master=master, allow_private=cfg.notify.allow_private
    )


def acme_routes(
    cfg: Config,
    *,
    store: Store,
    writer: GroupCommitWriter,
    engine: IssuanceEngine,
    clock: Clock,
    background: list[Callable[..., Awaitable[None]]],
    corroborator: Corroborator | None = None,
) -> list[Route]:
    """ACME and its EAB credentials, when `[acme]` has an eab_secret; the challenge
    runner goes to `background` (tasks `hanko serve` starts)."""
    master = eab_master(cfg) if cfg.acme.enabled else None
    if master is None:
        return []
    ra = RegistrationAuthority(
        store=store,
        writer=writer,
        engine=engine,
        clock=clock,
        issuance=cfg.issuance,
        settings=ra_settings(cfg, master),
    )
    nonces = Nonces(
        capacity=cfg.acme.nonce_capacity,
        lifetime=cfg.acme.nonce_lifetime.seconds,
        now=time.monotonic(),
    )
    profiles = frozenset(cfg.issuance.profiles)
    runner = ChallengeRunner(
        writer=writer,
        clock=clock,
        validator=acme_validator(cfg),
        corroborator=corroborator,
        caa=engine.caa,
    )
    background.append(runner.run)
    return [
        *AcmeFrontEnd(
            ra, nonces, runner, base_url=acme_base_url(cfg), account_rate=cfg.acme.account_rate
        ).routes(),
        *acme_eab.routes(store, writer, clock, master=master, profiles=profiles),
    ]


@dataclasses.dataclass
class _Service:
    """The components of one `hanko serve` process, built before anything runs."""

    writer: GroupCommitWriter
    pool: SignerPool
    clock: Clock
    refresher: OcspRefresher | None
    updater: CrlUpdater
    responders: ResponderProcesses
    listener: ApiListener
    notify: Notifier | None
    replicating: Replicator | None
    background: list[Callable[..., Awaitable[None]]]
    metrics: telemetry.Metrics | None
    leadership: Leadership
    app: App | None = None
    leader_jobs: list[Callable[[], Awaitable[None]]] = dataclasses.field(default_factory=list)
    engines: list[IssuanceEngine] = dataclasses.field(default_factory=list)


def _build(cfg: Config, store: Store, intake: IntakePool) -> _Service:
    writer = store_writer(cfg, store)
    pool = signer_pool(cfg)
    clock = SystemClock()
    svc = _Service(
        writer=writer,
        pool=pool,
        clock=clock,
        refresher=(
            ocsp_refresher(cfg, signer=pool, store=store, writer=writer, clock=clock)
            if cfg.ocsp.enabled
            else None
        ),
        updater=crl_updater(
            cfg, crl_publishers(cfg, signer=pool, store=store, writer=writer, clock=clock)
        ),
        # The status listener serves the CRL files even with OCSP off.
        responders=responder_processes(cfg),
        listener=ApiListener(listener_settings(cfg), peers=PeerCertificates()),
        notify=notifier(cfg, store=store, writer=writer, clock=clock),
        replicating=replicator(cfg, store=store, writer=writer),
        background=[],
        metrics=telemetry.Metrics() if cfg.metrics.listen else None,
        leadership=Leadership(store.leader_lock()),
    )
    if svc.metrics is not None:
        watch(
            cfg,
            svc.metrics,
            store=store,
            writer=writer,
            pool=pool,
            listener=svc.listener,
            responders=svc.responders,
            refresher=svc.refresher,
            updater=svc.updater,
            clock=clock,
        )
        svc.metrics.sources["leader"] = svc.leadership.statistics
    svc.app = build_app(
        cfg,
        store=store,
        writer=writer,
        pool=pool,
        clock=clock,
        intake=intake,
        refresher=svc.refresher,
        crl_updater=svc.updater,
        responders=svc.responders,
        peers=svc.listener.peers,
        listener=svc.listener,
        background=svc.background,
        observe=telemetry.observer(cfg, svc.metrics),
        metrics=svc.metrics,
        leadership=svc.leadership,
        leader_jobs=svc.leader_jobs,
        engines=svc.engines,
    )
    return svc


def _leader_tasks(cfg: Config, store: Store, svc: _Service) -> Callable[[trio.Nursery], Any]:
    """What only the leader runs: one refresher, one CRL updater, one sender of
    reminders and webhooks, one replicator per store, however many processes serve it."""

    async def start(nursery: trio.Nursery) -> None:
        await nursery.start(svc.updater.run)
        if svc.replicating is not None:
            await nursery.start(svc.replicating.run)
            if svc.metrics is not None:
                svc.metrics.sources["replication"] = svc.replicating.statistics
        nursery.start_soon(record_lapses, svc.writer, LicenseDesk(license_settings(cfg), svc.clock))
        if svc.notify is not None:
            await nursery.start(svc.notify.run)
            if svc.metrics is not None:
                svc.metrics.sources["notify"] = functools.partial(
                    notify_statistics, svc.notify, store
                )
            nursery.start_soon(send_reminders, cfg, store, svc.writer, svc.clock)
        if svc.refresher is not None:
            await nursery.start(svc.refresher.run)
        for job in svc.leader_jobs:
            nursery.start_soon(job)

    return start


async def run_service(
    cfg: Config,
    signals: AsyncIterator[int],
    *,
    config_path: Path,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    store = open_store(cfg)
    if cfg.store.backend == "postgresql" and cfg.store.password is not None:
        # The status responders read the store too; the password reaches them here,
        # never on their command line.
        os.environ[STORE_PASSWORD_ENV] = read_secret(cfg, cfg.store.password)
    intake = IntakePool()
    try:
        svc = _build(cfg, store, intake)
        assert svc.app is not None  # noqa: S101 - _build made it
        if cfg.ocsp.enabled:
            svc.leader_jobs.append(
                functools.partial(
                    keep_renewed, config_path, signer=svc.pool, writer=svc.writer, clock=svc.clock
                )
            )
        reloader = Reloader(
            cfg,
            config_path,
            listener=svc.listener,
            auth=svc.app.authenticator,
            issuers=IssuerSwitch(
                engine=svc.engines[0],
                signer=svc.pool,
                store=store,
                writer=svc.writer,
                refresher=svc.refresher,
                updater=svc.updater,
                responders=svc.responders,
                clock=svc.clock,
            ),
        )
        metrics = svc.metrics
        endpoint = telemetry.MetricsEndpoint(metrics, cfg) if metrics is not None else None
        async with trio.open_nursery() as nursery:
            await nursery.start(svc.writer.run)
            await nursery.start(svc.pool.run)  # fails fast: wrong PIN, missing key label
            await nursery.start(svc.leadership.run, _leader_tasks(cfg, store, svc))
            for task in svc.background:
                await nursery.start(task)
            status_bind = await nursery.start(svc.responders.run)
            log.info("status listener (OCSP, CRLs) on %s", status_bind)
            binds = await nursery.start(svc.listener.run, svc.app)
            if endpoint is not None:
                [scrape] = await nursery.start(endpoint.run)
                log.info("metrics on %s/metrics", scrape)
            log.info("hanko serving on %s", ", ".join(binds), extra={"event": "serve.started"})
            task_status.started(binds)
            await handle_signals(
                signals, reloader=reloader, listener=svc.listener, stop=nursery.cancel_scope.cancel
            )
    finally:
        intake.close()
        store.close()


async def _main(cfg: Config, config_path: Path) -> None:
    # The receiver must outlive the nursery: while it is open, SIGINT, SIGTERM and SIGHUP
    # are ours to handle instead of a KeyboardInterrupt or the end of the process.
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM, signal.SIGHUP) as signals:
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(
                functools.partial(run_service, cfg, signals, config_path=config_path)
            )
            what = "OCSP and CRLs" if cfg.ocsp.enabled else "CRLs"
            print(
                f"hanko: serving the API on {', '.join(binds)}, {what} on"
                f" http://{cfg.ocsp.listen} (Ctrl-C to stop)",
                flush=True,
            )


def serve(cfg: Config, config_path: Path) -> None:
    logs.configure(cfg.log.format, cfg.log.level)
    trio.run(_main, cfg, config_path)
