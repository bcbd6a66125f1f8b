"""`hanko bench` on a host without the bench extra (a production host: `pip install .`)
says in one line what to install, exit 1, no traceback."""

from __future__ import annotations

import subprocess
import sys

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
