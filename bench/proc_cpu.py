"""Where a load benchmark's CPU went: CPU seconds of a process tree, by role, from /proc.

On a 2-core machine the signer, the core, the CSR intake processes, the responders and
the load generator all share the same cores, so a throughput figure alone cannot say
what limits it; CPU per certificate by role can (docs/architecture.md, issuance).
"""

from __future__ import annotations

import os
import resource
from pathlib import Path

# A descendant's role, from its command line; the root process is "core".
_ROLES = (
    ("signer.worker", "signer"),
    ("ocsp.status.server", "responder"),
    ("multiprocessing.spawn", "intake"),
)
_TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds) of a live process; None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: split after its last ")".
    fields = text.rsplit(")", 1)[1].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICK


def _role(pid: int) -> str:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return "other"
    return next((role for key, role in _ROLES if key in cmdline), "other")


def tree_cpu(root: int) -> dict[str, float]:
    """CPU seconds (user + system) used so far by `root` ("core") and each role among its
    live descendants. A descendant that already exited is not counted."""
    stats: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None:
                stats[int(entry.name)] = stat
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    out: dict[str, float] = {"core": stats[root][1] if root in stats else 0.0}
    todo = list(children.get(root, []))
    while todo:
        pid = todo.pop()
        role = _role(pid)
        out[role] = out.get(role, 0.0) + stats[pid][1]
        todo.extend(children.get(pid, []))
    return out


def children_cpu() -> float:
    """CPU seconds of this process's waited-for children (a finished load generator)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def spent(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """CPU seconds per role between two `tree_cpu` readings."""
    return {role: after[role] - before.get(role, 0.0) for role in after}
