"""Wiring of domain validation performed by hanko: the [dcv] settings, the mailer of
[email], and the resolver they share with CAA and ACME."""

from __future__ import annotations

from core.base.clock import Clock
from core.cmd.wiring import dns_resolver
from core.cmd.wiring_mpic import mpic_corroborator
from core.config import Config, read_secret
from core.dcv.mailer import Mailer, MailSettings
from core.dcv.service import DcvSettings, DomainControl
from core.mpic.client import Corroborator
from core.store import GroupCommitWriter, Store


def domain_control(
    cfg: Config,
    *,
    store: Store,
    writer: GroupCommitWriter,
    clock: Clock,
    corroborator: Corroborator | None = None,
) -> DomainControl:
    """Domain validation hanko performs ([dcv]; e-mail through [email] when it has a
    host), corroborated by the remote perspectives of [mpic] when it is enabled."""
    d, e = cfg.dcv, cfg.email
    mailer = None
    if e.host:
        mailer = Mailer(
            MailSettings(
                host=e.host,
                port=e.port,
                security=e.security,
                sender=e.sender,
                user=e.user,
                password=read_secret(cfg, e.password) if e.password is not None else "",
                ca_file=str(cfg.path(e.ca_file)) if e.ca_file else None,
                timeout=e.timeout.seconds,
            )
        )
    settings = DcvSettings(
        lifetime=int(d.challenge_lifetime.seconds),
        dns_label=d.dns_label,
        http_port=d.http_port,
        allow_private=d.allow_private_targets,
        timeout=d.timeout.seconds,
        ca_name=cfg.caa.identities[0] if cfg.caa.identities else "hanko",
    )
    return DomainControl(
        store=store,
        writer=writer,
        resolver=dns_resolver(cfg),
        clock=clock,
        settings=settings,
        mailer=mailer,
        corroborator=corroborator or mpic_corroborator(cfg, clock),
    )
