"""`hanko bench` on a host without the bench extra (a production host: `pip install .`)
says in one line what to install, exit 1, no traceback; a bench terminated mid-run
stops what it started."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.conftest import BIN

PROBE = (
    "import sys; sys.modules['matplotlib'] = None\n"
    "from core.main import main\n"
    "sys.exit(main(['bench', 'store']))\n"
)


def test_bench_without_its_extra_says_what_to_install() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert lines == [
        "hanko: error: hanko bench needs the bench extra (matplotlib missing):"
        " pip install 'hanko[bench]' (scripts/dev.sh installs it)"
    ]


def _processes_under(folder: Path) -> dict[int, str]:
    """The processes whose command line names `folder` (a PostgreSQL cluster's data)."""
    found = {}
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(folder) in args:
            found[int(cmdline.parent.name)] = args
    return found


@pytest.mark.slow
def test_a_terminated_bench_stops_its_postgresql_and_removes_its_folders() -> None:
    # Every folder the bench makes goes under this one; PostgreSQL's server (another
    # user when run as root) must be able to pass through it.
    tmp = Path(tempfile.mkdtemp(prefix="hanko-bench-term-"))
    tmp.chmod(0o755)
    log = tmp / "stderr"
    with log.open("wb") as err:
        bench = subprocess.Popen(
            [str(BIN / "hanko"), "bench", "search", "--certs", "1000000"],
            stdout=subprocess.DEVNULL,
            stderr=err,
            env={**os.environ, "TMPDIR": str(tmp)},
        )
    try:
        deadline = time.monotonic() + 120
        # Terminated while it writes to PostgreSQL, its cluster up.
        while b"postgresql: 1,000,000 certificates" not in log.read_bytes():
            assert bench.poll() is None, log.read_text()[-2000:]
            assert time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.2)
        assert _processes_under(tmp)
        bench.send_signal(signal.SIGTERM)
        assert bench.wait(timeout=60) == 130
        assert "Traceback" not in log.read_text()
        assert _processes_under(tmp) == {}
        assert [p.name for p in tmp.iterdir()] == ["stderr"]
    finally:
        bench.kill()
        bench.wait()
        for pid in _processes_under(tmp):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(tmp, ignore_errors=True)
