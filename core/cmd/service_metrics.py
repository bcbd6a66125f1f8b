"""What `hanko serve` points its metrics at: each component's hooks and statistics."""

from __future__ import annotations

from collections.abc import Iterator

from core.api.server import ApiListener
from core.base.clock import Clock, to_epoch
from core.cmd import telemetry
from core.cmd.wiring import license_settings
from core.config import Config
from core.licenses.desk import LicenseDesk
from core.store import GroupCommitWriter, Store
from crl.updater import CrlUpdater
from ocsp.refresher import OcspRefresher
from ocsp.status.supervisor import ResponderProcesses
from signer.pool import SignerPool


def watch(
    cfg: Config,
    metrics: telemetry.Metrics,
    *,
    store: Store,
    writer: GroupCommitWriter,
    pool: SignerPool,
    listener: ApiListener,
    responders: ResponderProcesses,
    refresher: OcspRefresher | None,
    updater: CrlUpdater,
    clock: Clock,
) -> None:
    """Point the metrics at the components: their hooks and their statistics."""
    writer.on_commit = metrics.committed
    pool.on_batch = metrics.signer_batch.observe
    metrics.sources.update(
        signer=pool.statistics,
        writer=writer.statistics,
        store=store.map_use,
        responders=responders.statistics,
        crl=updater.statistics,
        listener=listener.statistics,
    )
    if refresher is not None:
        metrics.sources["refresher"] = refresher.statistics
    metrics.crl_dir = cfg.path(cfg.crl.publish_dir)
    if not cfg.metrics.per_account:
        return  # who holds which balance is the customers' business: off unless asked
    desk = LicenseDesk(license_settings(cfg), clock)

    def balances() -> Iterator[tuple[str, str, str, str, int]]:
        with store.read() as txn:
            now = to_epoch(clock.now())
            for account in desk.accounts(txn):
                for lic in txn.iter_licenses(account.id):
                    view = desk.license_view(txn, lic, now)
                    yield account.id, view.id, view.kind, view.totals.unit, view.totals.available

    metrics.licenses = balances
