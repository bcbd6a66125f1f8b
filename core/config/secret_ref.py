"""Where a secret is read from (its own module: every configuration table may name one)."""

from __future__ import annotations

import msgspec


class SecretRef(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """Where a secret is read from: exactly one of a file (mode 0600) or an env variable."""

    file: str | None = None
    env: str | None = None
