"""What `hanko serve` does on its signals. SIGHUP: read the configuration again and
apply what can change while serving (the API's TLS files, its deadlines, the admin
token, the log format and level, the issuers: core/cmd/issuer_reload.py); every other
change is named in the log and kept for the next start. A configuration that does not
load changes nothing. SIGTERM or SIGINT: drain the API (no new connection, every request
under way answered, within [api] drain_timeout), then stop the rest; a second one stops
at once.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import msgspec
import trio

from core.api.router import Authenticator
from core.api.server import ApiListener
from core.base import logs
from core.base.errors import ConfigError, HankoError
from core.cmd.issuer_reload import IssuerSwitch
from core.cmd.wiring import listener_settings
from core.config import Config, load_config, read_secret

log = logging.getLogger("hanko")

# Dotted setting names (prefixes) applied without a restart.
RELOADABLE = (
    "api.tls_cert",
    "api.tls_key",
    "api.client_ca",
    "api.header_timeout",
    "api.body_timeout",
    "api.drain_timeout",
    "api.admin_token",
    "log.",
    "ca.issuers",
)


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, inner in value.items():
            out.update(flatten(inner, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): value}


def changed_settings(old: Config, new: Config) -> tuple[list[str], list[str]]:
    """(reloadable, needing a restart): the dotted names of the settings that differ."""
    a = flatten(msgspec.to_builtins(old, enc_hook=str))
    b = flatten(msgspec.to_builtins(new, enc_hook=str))
    names = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
    live = [n for n in names if any(n == r or n.startswith(r) for r in RELOADABLE)]
    return live, [n for n in names if n not in live]


class Reloader:
    def __init__(
        self,
        cfg: Config,
        path: Path,
        *,
        listener: ApiListener,
        auth: Authenticator | None,
        issuers: IssuerSwitch | None = None,
    ) -> None:
        self.cfg = cfg  # as last applied
        self._started = cfg  # what needs a restart runs as it was at the start
        self._path = path
        self._listener = listener
        self._auth = auth
        self._issuers = issuers
        self.reloads = 0

    async def reload(self) -> bool:
        """Apply the configuration file as it is now; False if it was refused."""
        try:
            new = load_config(self._path)
            token = read_secret(new, new.api.admin_token)
            live, _ = changed_settings(self.cfg, new)
            _, kept = changed_settings(self._started, new)
            switch = self._issuers if new.issuers() != self.cfg.issuers() else None
            if switch is not None:
                switch.check(self.cfg, new)
            self._listener.reload(listener_settings(new))
            if switch is not None:
                await switch.apply(new)
        except ConfigError as exc:
            return _refused("; ".join(exc.problems or [exc.message]))
        except HankoError as exc:
            return _refused(exc.message)
        if self._auth is not None:
            self._auth.set_admin_token(token)
        logs.configure(new.log.format, new.log.level)
        applied = live + (["the API's TLS certificate (read again)"] if self._listener.tls else [])
        log.info(
            "reloaded %s: applied %s; kept until a restart: %s",
            self._path,
            ", ".join(applied) or "nothing changed",
            ", ".join(kept) or "nothing",
            extra={"event": "reload.done", "applied": applied, "kept": kept},
        )
        self.cfg = new
        self.reloads += 1
        return True


def _refused(why: str) -> bool:
    # A state the operator fixes in the file, not a bug: no traceback.
    log.error("reload refused, nothing changed: %s", why, extra={"event": "reload.refused"})
    return False


async def handle_signals(
    signals: AsyncIterator[int],
    *,
    reloader: Reloader,
    listener: ApiListener,
    stop: Callable[[], None],
) -> None:
    async for signum in signals:
        if signum == signal.SIGHUP:
            try:
                await reloader.reload()
            except Exception:  # a bug in reloading must not stop a serving CA
                log.exception(
                    "reload failed; serving on as before", extra={"event": "reload.failed"}
                )
            continue
        timeout = reloader.cfg.api.drain_timeout.seconds
        open_now = listener.statistics().open_connections
        log.info(
            "shutting down: draining %d connections (at most %gs)",
            open_now,
            timeout,
            extra={"event": "shutdown.draining"},
        )
        async with trio.open_nursery() as nursery:

            async def second_signal() -> None:
                async for again in signals:
                    if again != signal.SIGHUP:
                        log.warning(
                            "second signal: stopping without waiting",
                            extra={"event": "shutdown.forced"},
                        )
                        nursery.cancel_scope.cancel()
                        return

            nursery.start_soon(second_signal)
            drained = await listener.drain(timeout)
            if drained:
                log.info("drained: every request answered", extra={"event": "shutdown.drained"})
            else:
                log.warning(
                    "drain timeout: %d connections still open are cut",
                    listener.statistics().open_connections,
                    extra={"event": "shutdown.drain_timeout"},
                )
            nursery.cancel_scope.cancel()
        stop()
        return
