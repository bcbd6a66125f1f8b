"""Reading the secrets a configuration names (a 0600 file or an environment variable)."""

from __future__ import annotations

from core.base.errors import SecretError
from core.base.secretfiles import read_secret_env, read_secret_file
from core.config.settings import Config, SecretRef


def read_secret(cfg: Config, ref: SecretRef) -> str:
    if ref.file is not None:
        return read_secret_file(cfg.path(ref.file))
    if ref.env is not None:
        return read_secret_env(ref.env)
    raise SecretError("the secret names neither a file nor an environment variable")
