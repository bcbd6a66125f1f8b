"""Reading the secrets a configuration names (a 0600 file or an environment variable)."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from core.base.errors import SecretError
from core.base.secretfiles import read_secret_env, read_secret_file
from core.config.secret_ref import SecretRef


class _Located(Protocol):  # a configuration file: relative paths are from its folder
    def path(self, value: str) -> Path: ...


def read_secret(cfg: _Located, ref: SecretRef) -> str:
    if ref.file is not None:
        return read_secret_file(cfg.path(ref.file))
    if ref.env is not None:
        return read_secret_env(ref.env)
    raise SecretError("the secret names neither a file nor an environment variable")
