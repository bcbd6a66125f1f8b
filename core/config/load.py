"""Loading a configuration file strictly.

Every unknown key is reported with its dotted path (and a suggestion when it looks like
a misspelling), every type error with its path, and then the semantic checks run (files
exist, secrets readable and private). `check_config` returns all problems;
`load_config` raises ConfigError with all of them.
"""

from __future__ import annotations

import difflib
import os
import tomllib
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from core.base.errors import ConfigError
from core.base.units import ByteSize, Duration
from core.config.checks import semantic_problems
from core.config.perspective import PerspectiveFile, perspective_problems
from core.config.responder_host import ResponderFile, responder_problems
from core.config.settings import Config

_File = TypeVar("_File", bound=msgspec.Struct)


def _dec_hook(typ: type, obj: Any) -> Any:
    if typ in (Duration, ByteSize) and isinstance(obj, str):
        return typ(obj)
    # msgspec reports a TypeError from here as a validation error at the field's path.
    raise TypeError(f"expected a string with a unit such as '500ms', got {type(obj).__name__}")


def _struct_type(annotation: Any) -> type[msgspec.Struct] | None:
    """The Struct inside an annotation such as `X`, `X | None`, else None."""
    if isinstance(annotation, type) and issubclass(annotation, msgspec.Struct):
        return annotation
    for arg in typing.get_args(annotation):
        found = _struct_type(arg)
        if found is not None:
            return found
    return None


# Keys that moved to another table: named with their new place.
MOVED = {"issuance.crl_partitions": "crl.partitions", "issuance.ocsp": "ocsp.enabled"}
REMOVED = {
    "api.rpc_token": "API keys replace it: hanko keys create -c CONFIG --role issuer --account A",
}


def _unknown_and_missing(raw: dict[str, Any], cls: type[msgspec.Struct], prefix: str) -> list[str]:
    """Walk the raw TOML against the Struct tree; msgspec alone stops at the first error."""
    problems: list[str] = []
    hints = typing.get_type_hints(cls)
    fields = {f.encode_name: f for f in msgspec.structs.fields(cls)}
    for key, value in raw.items():
        path = f"{prefix}{key}"
        if path in MOVED:
            problems.append(f"{path}: moved to {MOVED[path]}")
            continue
        if path in REMOVED:
            problems.append(f"{path}: removed; {REMOVED[path]}")
            continue
        if key not in fields or key == "base_dir":
            close = difflib.get_close_matches(key, [k for k in fields if k != "base_dir"], n=1)
            hint = f" (did you mean '{prefix}{close[0]}'?)" if close else ""
            problems.append(f"{path}: unknown key{hint}")
            continue
        annotation = hints[fields[key].name]
        origin, args = typing.get_origin(annotation), typing.get_args(annotation)
        # Tables of Structs (profiles) and arrays of Structs (the validity schedule).
        items: list[tuple[str, Any]] | None = None
        if origin is dict and len(args) == 2 and isinstance(value, dict):
            element, items = _struct_type(args[1]), [(f".{k}.", v) for k, v in value.items()]
        elif origin is list and args and isinstance(value, list):
            element, items = _struct_type(args[0]), [(f"[{i}].", v) for i, v in enumerate(value)]
        if items is not None and element is not None:
            for suffix, item in items:
                if isinstance(item, dict):
                    problems.extend(_unknown_and_missing(item, element, path + suffix))
            continue
        sub = _struct_type(annotation)
        if sub is not None and isinstance(value, dict):
            problems.extend(_unknown_and_missing(value, sub, f"{path}."))
    for key, f in fields.items():
        if f.required and key not in raw:
            problems.append(f"{prefix}{key}: required key is missing")
    return problems


def _type_errors(raw: dict[str, Any], cls: type[msgspec.Struct]) -> list[str]:
    """Convert each top-level section on its own so every broken section is reported."""
    problems: list[str] = []
    hints = typing.get_type_hints(cls)
    for f in msgspec.structs.fields(cls):
        if f.encode_name not in raw:
            continue
        try:
            msgspec.convert(raw[f.encode_name], hints[f.name], dec_hook=_dec_hook)
        except msgspec.ValidationError as exc:
            # msgspec says "... - at `$.x.y`"; rewrite into the file's dotted path.
            text = str(exc)
            where = f.encode_name
            if " - at `$" in text:
                text, _, at = text.rpartition(" - at `$")
                where += at.rstrip("`").replace("[", ".").replace("]", "")
            # The walker already reported unknown and missing keys with better hints.
            if not text.startswith(("Object contains unknown field", "Object missing required")):
                problems.append(f"{where}: {text}")
    return problems


def _check(
    path: Path, cls: type[_File], semantic: Callable[[_File], list[str]]
) -> tuple[_File | None, list[str]]:
    try:
        text = path.read_text()
    except OSError as exc:
        return None, [f"{path}: cannot read ({exc.strerror})"]
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return None, [f"{path}: not valid TOML ({exc})"]
    problems = _unknown_and_missing(raw, cls, "") + _type_errors(raw, cls)
    if problems:
        return None, problems
    raw["base_dir"] = str(path.resolve().parent)
    cfg = msgspec.convert(raw, cls, dec_hook=_dec_hook)
    problems = semantic(cfg)
    return (cfg if not problems else None), problems


def check_config(path: Path) -> tuple[Config | None, list[str]]:
    """Every problem in the file, one readable line each; the Config when there are none."""
    return _check(path, Config, semantic_problems)


def load_responder_config(path: Path) -> ResponderFile:
    """`hanko responder -c FILE`: a status host's file, checked as strictly."""
    cfg, problems = _check(path, ResponderFile, responder_problems)
    if cfg is None:
        raise ConfigError(problems)
    if not cfg.responder.path:
        beside = msgspec.structs.replace(cfg.responder, path=f"{path.stem}.status")
        cfg = msgspec.structs.replace(cfg, responder=beside)
    return cfg


def load_perspective_config(path: Path) -> PerspectiveFile:
    """`hanko perspective serve -c FILE`: a remote perspective's file."""
    cfg, problems = _check(path, PerspectiveFile, perspective_problems)
    if cfg is None:
        raise ConfigError(problems)
    return cfg


def config_path(path: Path | None) -> Path:
    """The file to read: the one given, else $HANKO_CONFIG."""
    if path is not None:
        return path
    env = os.environ.get("HANKO_CONFIG")
    if not env:
        raise ConfigError(["no configuration: pass -c FILE or set HANKO_CONFIG"])
    return Path(env)


def load_config(path: Path | None) -> Config:
    path = config_path(path)
    cfg, problems = check_config(path)
    if cfg is None:
        raise ConfigError(problems)
    return cfg
