"""A responder host's processes (`hanko responder`, and the benches that measure one):
the copier that keeps the host's copy equal to its Redis, then the responder
processes that answer from the copy. A copy that names the CA already (any restart)
lets the responders start at once; a first start waits for Redis to name it.
"""

from __future__ import annotations

from pathlib import Path

import trio

from core.base.errors import HankoError
from ocsp.status.copy_store import CopyView
from ocsp.status.settings import CopierSettings, ServerSettings
from ocsp.status.supervisor import COPIER, ResponderProcesses, ResponderStatistics

# How long a first start waits for Redis to hold the CA's profile.
PROFILE_WAIT = 120.0


async def wait_for_profile(path: Path, seconds: float) -> None:
    """Until the copy names the CA; HankoError past `seconds`."""
    with trio.move_on_after(seconds):
        while True:
            view = CopyView(path)
            try:
                if view.profile() is not None:
                    return
            finally:
                view.close()
            await trio.sleep(0.1)
    raise HankoError(
        f"no status to serve after {seconds:g} s: Redis holds no CA profile"
        " (is hanko serve replicating to it?)"
    )


class ResponderHost:
    def __init__(
        self,
        copier: CopierSettings,
        server: ServerSettings,
        processes: int,
        *,
        profile_wait: float = PROFILE_WAIT,
    ) -> None:
        self._copier = ResponderProcesses(copier, 1, module=COPIER, what="status copier")
        self._responders = ResponderProcesses(server, processes)
        self._path = Path(copier.path)
        self._profile_wait = profile_wait

    def statistics(self) -> ResponderStatistics:
        return self._responders.statistics()

    def pids(self) -> list[int]:
        """The copier's, then every responder's."""
        return self._copier.statistics().pids + self._responders.statistics().pids

    async def run(self, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve until cancelled; started with "host:port" once the responders listen."""
        async with trio.open_nursery() as nursery:
            await nursery.start(self._copier.run)
            await wait_for_profile(self._path, self._profile_wait)
            task_status.started(await nursery.start(self._responders.run))
