"""Wiring of corroboration: the primary's client for the remote perspectives of
[mpic], shared by CAA, ACME and the domain validations of one process."""

from __future__ import annotations

from core.base.clock import Clock
from core.config import Config
from core.config.mpic import required_on
from core.mpic.client import Corroborator, Perspective, client_context


def mpic_corroborator(cfg: Config, clock: Clock) -> Corroborator | None:
    """None only when [mpic] enabled = false (check-config allows it on loopback)."""
    m = cfg.mpic
    if not m.enabled:
        return None
    tls = client_context(
        ca_file=str(cfg.path(m.ca_file)),
        cert_file=str(cfg.path(m.client_cert)),
        key_file=str(cfg.path(m.client_key)),
    )
    return Corroborator(
        [Perspective(url=p.url, code=p.code, rir=p.rir) for p in m.perspectives],
        required=lambda: required_on(m, clock.now()),
        timeout=m.timeout.seconds,
        tls=tls,
    )
