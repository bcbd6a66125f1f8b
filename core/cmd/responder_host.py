"""`hanko responder -c RESPONDER.toml`: the status service of a host that holds no
store and no HSM. One copier process keeps the host's copy of the CA's status (LMDB,
`[responder] path`) equal to this host's Redis replica; responder processes (the same
server as `hanko serve`'s, several on one port) answer OCSP, /crl/ and the CA
certificates from that copy, and /readyz tells a load balancer whether it is current.
A restart answers at once from the copy it has; only a first start waits for Redis to
name the CA.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
from pathlib import Path
from typing import Any

from core.cmd.common import add_config

log = logging.getLogger("hanko.responder")


def copy_path(cfg: Any) -> Path:
    return Path(cfg.path(cfg.responder.path))


def settings_for(cfg: Any) -> Any:
    """The responder processes' settings from `[responder]`: no secret in them."""
    from core.config import parse_listen
    from ocsp.status.settings import ServerSettings, http_limits

    r = cfg.responder
    host, port = parse_listen(r.listen)
    return ServerSettings(host=host, port=port, copy_path=str(copy_path(cfg)), **http_limits(r))


def copier_settings(cfg: Any) -> Any:
    from ocsp.status.settings import CopierSettings

    r = cfg.responder
    return CopierSettings(
        redis=r.redis,
        path=str(copy_path(cfg)),
        prefix=r.prefix,
        timeout=r.timeout.seconds,
        max_lag=r.max_lag.seconds,
        log_format=cfg.log.format,
        log_level=cfg.log.level,
    )


async def _run(cfg: Any) -> None:
    import trio

    from ocsp.status.host import ResponderHost

    r = cfg.responder
    host = ResponderHost(
        copier_settings(cfg), settings_for(cfg), r.processes or os.cpu_count() or 1
    )
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            where = await nursery.start(host.run)
            print(
                f"hanko: responder serving OCSP and CRLs on http://{where} from {r.redis}"
                f" (copy in {copy_path(cfg)}; Ctrl-C to stop)",
                flush=True,
            )
            async for signum in signals:
                log.info("responder: %s received, stopping", signal.Signals(signum).name)
                nursery.cancel_scope.cancel()
                break


def cmd_responder(args: argparse.Namespace) -> int:
    import trio

    from core.base import logs
    from core.config import read_secret
    from core.config.load import config_path, load_responder_config
    from ocsp.status.sources import PASSWORD_ENV

    cfg = load_responder_config(config_path(args.config))
    logs.configure(cfg.log.format, cfg.log.level)
    if cfg.responder.password is not None:
        # Inherited by the copier; never on its command line.
        os.environ[PASSWORD_ENV] = read_secret(cfg, cfg.responder.password)
    else:
        os.environ.pop(PASSWORD_ENV, None)
    trio.run(_run, cfg)
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser(
        "responder",
        help="serve OCSP and CRLs from this host's copy of a CA's status in Redis"
        " (no store, no HSM)",
    )
    add_config(p)
    p.set_defaults(func=cmd_responder)
