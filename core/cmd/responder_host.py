"""`hanko responder -c RESPONDER.toml`: the status service of a host that holds no
store and no HSM. Responder processes (the same server as `hanko serve`'s, several on
one port) answer OCSP, /crl/ and the CA certificates from this host's Redis replica,
and /readyz tells a load balancer whether they are current.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
from typing import Any

from core.cmd.common import add_config

log = logging.getLogger("hanko.responder")


def settings_for(cfg: Any) -> Any:
    """The responder processes' settings from `[responder]`: no secret in them."""
    from core.config import parse_listen
    from ocsp.status.settings import ServerSettings, http_limits

    r = cfg.responder
    host, port = parse_listen(r.listen)
    return ServerSettings(
        host=host,
        port=port,
        redis=r.redis,
        redis_prefix=r.prefix,
        redis_timeout=r.timeout.seconds,
        max_lag=r.max_lag.seconds,
        **http_limits(r),
    )


async def _run(cfg: Any) -> None:
    import trio

    from ocsp.status.sources import REDIS_START
    from ocsp.status.supervisor import ResponderProcesses

    r = cfg.responder
    processes = ResponderProcesses(
        settings_for(cfg), r.processes or os.cpu_count() or 1, start_timeout=REDIS_START
    )
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            where = await nursery.start(processes.run)
            print(
                f"hanko: responder serving OCSP and CRLs on http://{where} from {r.redis}"
                " (Ctrl-C to stop)",
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
        # Inherited by the responder processes; never on their command line.
        os.environ[PASSWORD_ENV] = read_secret(cfg, cfg.responder.password)
    else:
        os.environ.pop(PASSWORD_ENV, None)
    trio.run(_run, cfg)
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser(
        "responder",
        help="serve OCSP and CRLs from a Redis replica of a CA's status (no store, no HSM)",
    )
    add_config(p)
    p.set_defaults(func=cmd_responder)
