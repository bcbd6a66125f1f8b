"""Rewriting the `[[ca.issuers]]` tables of a configuration file's text, and nothing
else: the commands that manage issuers edit the file so that no operator has to. Pure
(text in, text out); the caller checks the result and replaces the file.

Every `[[ca.issuers]]` table is replaced by the list given, written where the first one
was (or after the `[ca]` table); the one-issuer form's keys in `[ca]` are removed when
the list takes them over. Comments outside those tables stay as they were.
"""

from __future__ import annotations

import datetime as dt
import re

from core.config.issuers import IssuerConfig

_HEADER = re.compile(r"^\s*\[\[?\s*([A-Za-z0-9_.\-\" ]+?)\s*\]\]?\s*(#.*)?$")
LEGACY_KEYS = (
    "issuer_cert",
    "issuer_key_label",
    "ocsp_responder_cert",
    "ocsp_responder_key_label",
    "issuer_url",
)
_DEFAULTS = IssuerConfig(name="x", cert="x", key_label="x")


def _string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _value(value: object) -> str:
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} into TOML")


def issuer_table(issuer: IssuerConfig) -> str:
    """One `[[ca.issuers]]` table: the name, the certificate, the key, and every other
    key that differs from its default (profiles always: empty says inactive)."""
    lines = ["[[ca.issuers]]"]
    for field in IssuerConfig.__struct_fields__:
        value = getattr(issuer, field)
        if field not in ("name", "cert", "key_label", "key_type", "profiles") and (
            value == getattr(_DEFAULTS, field)
        ):
            continue
        lines.append(f"{field} = {_value(value)}")
    return "\n".join(lines) + "\n"


def _table_of(line: str) -> str | None:
    m = _HEADER.match(line)
    if m is None or line.lstrip().startswith("#"):
        return None
    return m.group(1).replace('"', "").replace(" ", "")


def with_issuers(text: str, issuers: list[IssuerConfig], *, drop_legacy: bool = False) -> str:
    lines = text.splitlines(keepends=True)
    out: list[str] = []
    table: str | None = None
    in_issuers = False
    insert_at: int | None = None
    ca_end: int | None = None
    for line in lines:
        name = _table_of(line)
        if name is not None:
            if table == "ca" and ca_end is None:
                ca_end = len(out)
            table = name
            in_issuers = line.lstrip().startswith("[[") and name == "ca.issuers"
            if in_issuers:
                if insert_at is None:
                    insert_at = len(out)
                continue
        if in_issuers:
            continue
        if drop_legacy and table == "ca":
            key = line.split("=", 1)[0].strip()
            if "=" in line and key in LEGACY_KEYS:
                continue
        out.append(line)
    if table == "ca" and ca_end is None:
        ca_end = len(out)
    tables = "".join(issuer_table(i) + "\n" for i in issuers)
    if insert_at is None:
        insert_at = ca_end if ca_end is not None else len(out)
        if insert_at > 0 and out[insert_at - 1].strip():
            tables = "\n" + tables
    # Blank lines left where the old tables ended are not kept twice.
    while insert_at < len(out) and not out[insert_at].strip():
        del out[insert_at]
    out.insert(insert_at, tables)
    result = "".join(out)
    return result if result.endswith("\n") else result + "\n"
