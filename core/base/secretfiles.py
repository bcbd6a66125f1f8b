"""Secrets (HSM PIN, API tokens) live in 0600 files or in the environment, never in
code, config values or logs."""

from __future__ import annotations

import os
import secrets as _random
import stat
from pathlib import Path

from core.base.errors import SecretError


def write_secret_file(path: Path, value: str) -> None:
    """Create `path` with mode 0600 from the first byte on: no window where it is readable."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def read_secret_file(path: Path) -> str:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise SecretError(f"secret file {path} does not exist") from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretError(
            f"secret file {path} is readable by group or others "
            f"(mode {stat.S_IMODE(st.st_mode):04o}); run: chmod 600 {path}"
        )
    value = path.read_text().strip()
    if not value:
        raise SecretError(f"secret file {path} is empty")
    return value


def read_secret_env(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise SecretError(f"environment variable {name} is not set or empty")
    return value


def new_token(nbytes: int = 32) -> str:
    return _random.token_urlsafe(nbytes)


def new_pin() -> str:
    # SoftHSM accepts 4..255 characters; hex keeps it printable for any PKCS#11 module.
    return _random.token_hex(16)
