"""configs/hanko.service: systemd accepts it (`systemd-analyze verify`), it sandboxes
the service (writable only its state) and it reloads and stops as hanko expects."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[2] / "configs" / "hanko.service"
ROOT = UNIT.parents[1]


def verify(text: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    if shutil.which("systemd-analyze") is None:
        pytest.fail("systemd-analyze is missing (Debian's systemd package)")
    # The unit names /opt/hanko; here the code is this checkout (verify checks that
    # ExecStart exists).
    unit = tmp_path / "hanko.service"
    unit.write_text(text.replace("/opt/hanko", str(ROOT)))
    return subprocess.run(["systemd-analyze", "verify", str(unit)],
                          capture_output=True, text=True, check=False)  # fmt: skip


def directives(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def test_the_unit_verifies_and_is_sandboxed(tmp_path: Path) -> None:
    text = UNIT.read_text()
    result = verify(text, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "hanko.service" not in result.stderr, result.stderr  # no warning about it
    d = directives(text)
    assert d["NoNewPrivileges"] == "yes"
    assert d["ProtectSystem"] == "strict"
    assert d["ReadWritePaths"] == "/var/lib/hanko"
    assert d["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert d["KillSignal"] == "SIGTERM"
    assert int(d["TimeoutStopSec"].removesuffix("s")) > 30  # over [api] drain_timeout
    assert "hanko serve -c /etc/hanko/hanko.toml" in d["ExecStart"]
    assert not any(k in text for k in ("HANKO_HSM_PIN=", "--pin"))  # no secret in the unit


def test_verify_finds_a_broken_unit(tmp_path: Path) -> None:
    text = UNIT.read_text()
    typo = verify(text.replace("NoNewPrivileges=yes", "NoNewPrivilegs=yes"), tmp_path)
    assert "Unknown key 'NoNewPrivilegs'" in typo.stderr
    bad_value = verify(text.replace("ProtectSystem=strict", "ProtectSystem=sideways"), tmp_path)
    assert "hanko.service:" in bad_value.stderr
    missing = verify(text.replace("/opt/hanko/.venv/bin/hanko", "/nonexistent/hanko"), tmp_path)
    assert missing.returncode != 0
