"""CPU by role from /proc, against real processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from bench.proc_cpu import children_cpu, spent, tree_cpu

# Burns 0.3 s of CPU, then waits to be killed; its command line names a signer worker.
_BURN = (
    "# signer.worker\n"
    "import time\n"
    "t = time.process_time()\n"
    "while time.process_time() - t < 0.3: pass\n"
    "print('done', flush=True)\n"
    "time.sleep(60)\n"
)


def test_a_descendant_is_counted_under_its_role() -> None:
    before = tree_cpu(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", _BURN], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "done\n"
        used = spent(before, tree_cpu(os.getpid()))
    finally:
        child.kill()
        child.wait()
    assert 0.25 <= used["signer"] < 5
    assert used["core"] >= 0
    assert "intake" not in used


def test_a_waited_child_is_counted_by_children_cpu() -> None:
    before = children_cpu()
    start = time.monotonic()
    subprocess.run(
        [sys.executable, "-c", _BURN.replace("time.sleep(60)", "")], check=True, capture_output=True
    )
    assert time.monotonic() - start >= 0.3
    assert children_cpu() - before >= 0.25
