"""A running `hanko serve` taking an issuer change on SIGHUP: one created, activated,
retired or revoked (`hanko ca issuer ...`) is used from the next request on, with no
restart and no request refused. The engine, the CT submitter, the OCSP refresher and
the CRL updater switch at once; the status responders are replaced one by one.

An issuer may be added or change state; one that disappears, or whose certificate or key
changes, is refused (certificates it issued would lose their status): that needs a
restart after the operator made sure nothing still depends on it.
"""

from __future__ import annotations

import logging

from core.base.clock import Clock
from core.base.errors import ConfigError, HankoError
from core.ca.issuer import IssuerInfo
from core.cmd.wiring import ct_chains, responder_settings
from core.cmd.wiring_issuers import chains, crl_publishers, issuer_set, presigners
from core.config import Config
from core.issuance.engine import IssuanceEngine
from core.store import GroupCommitWriter, Store
from crl.updater import CrlUpdater
from ocsp.refresher import OcspRefresher
from ocsp.status.supervisor import ResponderProcesses
from signer.api import BatchSigner

log = logging.getLogger("hanko")


def issuer_problems(old: Config, new: Config) -> list[str]:
    """Why `new`'s issuers cannot replace `old`'s while serving ([] if they can)."""
    before = {r.name: r.config for r in old.issuers()}
    after = {r.name: r.config for r in new.issuers()}
    problems = [
        f"ca.issuers: {name} is gone; an issuer stays listed while it serves (retire it)"
        for name in before
        if name not in after
    ]
    for name, was in before.items():
        now = after.get(name)
        if now is not None and (was.cert, was.key_label, was.key_type) != (
            now.cert,
            now.key_label,
            now.key_type,
        ):
            problems.append(f"ca.issuers ({name}): its certificate or key changed (restart)")
    return problems


class IssuerSwitch:
    def __init__(
        self,
        *,
        engine: IssuanceEngine,
        signer: BatchSigner,
        store: Store,
        writer: GroupCommitWriter,
        refresher: OcspRefresher | None,
        updater: CrlUpdater,
        responders: ResponderProcesses,
        clock: Clock,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._signer = signer
        self._store = store
        self._writer = writer
        self._refresher = refresher
        self._updater = updater
        self._responders = responders

    def check(self, old: Config, new: Config) -> None:
        problems = issuer_problems(old, new)
        if problems:
            raise ConfigError(problems)

    async def apply(self, new: Config) -> None:
        """Everything built first (a broken file fails here and changes nothing), then
        switched; the responders last."""
        engine = self._engine
        issuers = issuer_set(new)
        made = presigners(new) if new.ocsp.enabled else None
        if made is not None and self._refresher is not None:
            # Keep the pre-signers already running: they follow renewed responder
            # certificates, which a fresh one would have to find again.
            made = {k: self._refresher.presigners.get(k, p) for k, p in made.items()}
        publishers = crl_publishers(
            new,
            signer=self._signer,
            store=self._store,
            writer=self._writer,
            clock=self._clock,
        )
        settings = responder_settings(new)
        ct = ct_chains(new) if engine.ct is not None else None
        engine.replace_issuers(issuers, chains(new), made)
        if ct is not None and engine.ct is not None:
            engine.ct.set_issuers(ct)
        if made is not None and self._refresher is not None:
            self._refresher.replace_presigners(made)
        self._updater.replace_publishers(publishers)
        try:
            await self._responders.replace(settings)
        except HankoError as exc:
            # Issuance already uses the new issuers: say plainly what is behind.
            log.error(  # noqa: TRY400 - a state, not a bug: no traceback
                "issuers switched, but the status responders could not be replaced (%s): "
                "certificates of a new issuer get no OCSP answer until hanko serve restarts",
                exc.message,
                extra={"event": "reload.responders_failed"},
            )
        log.info(
            "issuers now: %s",
            ", ".join(f"{i.name} ({_state(i)})" for i in issuers.all),
            extra={"event": "reload.issuers"},
        )


def _state(issuer: IssuerInfo) -> str:
    if issuer.retired:
        return "retired"
    return ",".join(sorted(issuer.profiles)) or "inactive"
