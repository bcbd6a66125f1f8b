"""One precertificate's race for SCTs, as state with no I/O: which logs to ask next as
answers, failures and stagger ticks come in, and when it is over.

The eligible logs come in `submission_order` (one per operator first). As many are
asked at once as the policy needs SCTs; another whenever one fails; another at each
stagger tick while the policy is unmet; the race is over once the policy is met, or
when no log is left to ask and none is still answering.
"""

from __future__ import annotations

from core.ct.policy import Log, required, satisfied
from core.ct.sct import Sct


class Race:
    def __init__(self, candidates: list[Log], validity_seconds: int) -> None:
        self._waiting = list(candidates)
        self._validity = validity_seconds
        self.need = required(validity_seconds)
        self.running: dict[str, Log] = {}  # by URL: asked, not answered yet
        self.got: list[tuple[Log, Sct]] = []
        self.failed: list[Log] = []
        self.done = False

    @property
    def satisfied(self) -> bool:
        return satisfied([log.operator for log, _ in self.got], self._validity)

    def begin(self) -> list[Log]:
        """The logs to ask first."""
        return self._more()

    def answered(self, log: Log, sct: Sct | None) -> list[Log]:
        """`log` gave a valid SCT, or failed (None): the logs to ask next."""
        self.running.pop(log.url, None)
        if self.done:
            return []
        if sct is None:
            self.failed.append(log)
        else:
            self.got.append((log, sct))
            if self.satisfied:
                self.done = True
                return []
        return self._more()

    def stagger(self) -> list[Log]:
        """A stagger tick: one more log while the policy is unmet."""
        if self.done or not self._waiting:
            return []
        return [self._ask()]

    def _more(self) -> list[Log]:
        asked: list[Log] = []
        # Enough asked to meet the count if all answer; and when everyone asked has
        # answered without meeting the policy (too few operators), one more.
        while self._waiting and (len(self.got) + len(self.running) < self.need or not self.running):
            asked.append(self._ask())
        if not self._waiting and not self.running:
            self.done = True
        return asked

    def _ask(self) -> Log:
        log = self._waiting.pop(0)
        self.running[log.url] = log
        return log
