"""SoftHSM token directories: the development HSM's edge.

`softhsm2-util` only reads PINs from a terminal or from its command line; a command
line is visible to every user through `ps`, so this drives it through a pseudo-terminal.
"""

from __future__ import annotations

import os
import pty
import select
import shutil
import time
from pathlib import Path

from core.base.errors import BootstrapError

SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
INSTALL_HINT = (
    "SoftHSM is not installed: run `apt-get install softhsm2` (or `scripts/dev.sh setup`)"
)


def require_softhsm(module: str = SOFTHSM_MODULE) -> str:
    """The path of softhsm2-util, or a BootstrapError that says how to install SoftHSM."""
    util = shutil.which("softhsm2-util")
    if util is None or not Path(module).is_file():
        raise BootstrapError(INSTALL_HINT)
    return util


def write_conf(directory: Path) -> Path:
    tokens = directory / "tokens"
    tokens.mkdir(mode=0o700)
    conf = directory / "softhsm2.conf"
    conf.write_text(
        "# SoftHSM configuration for this hanko instance only (SOFTHSM2_CONF points here).\n"
        f"directories.tokendir = {tokens}\n"
        "objectstore.backend = file\n"
        "log.level = ERROR\n"
        "slots.removable = false\n"
    )
    return conf


def init_token(util: str, conf: Path, label: str, so_pin: str, user_pin: str) -> None:
    """Initialise a fresh token in the first free slot, answering PIN prompts on a pty."""
    pid, fd = pty.fork()
    if pid == 0:  # child: becomes softhsm2-util with our conf
        os.environ["SOFTHSM2_CONF"] = str(conf)
        try:
            os.execv(util, [util, "--init-token", "--free", "--label", label])  # noqa: S606
        finally:
            os._exit(127)
    answers = [so_pin, so_pin, user_pin, user_pin]
    output = b""
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 1.0)
            if not ready:
                continue
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            output += chunk
            # One answer per prompt seen so far ("...PIN:" appears once per prompt).
            while answers and output.count(b"PIN:") > 4 - len(answers):
                os.write(fd, answers.pop(0).encode() + b"\n")
    finally:
        os.close(fd)
        _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code != 0 or b"initialized" not in output:
        # The PINs were typed with echo off ('*'), so the transcript is safe to show.
        last = output.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise BootstrapError(f"softhsm2-util could not initialise the token: {last[0]}")
