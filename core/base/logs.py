"""Logging for every hanko process: "text" for a terminal, or "json", one object a
line with time, level, event and message, plus the request id, key id, serial or
account where they apply. Those come from `extra={...}` on the call or from the
context of the request being served (`bind`), so a line logged deep in the issuance
engine still names the request it was for.

A field whose name says it holds a secret is written as "[redacted]": a log line is
never the place for one, even by mistake.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

# What a request's lines share (request_id, key_id, account...), set by the API.
_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "hanko_log_context", default=None
)
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
}
_SECRET_WORDS = ("secret", "token", "password", "pin", "hmac", "private")
LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


@contextmanager
def bind(**fields: Any) -> Iterator[None]:
    """Add `fields` to every line logged inside the block (this task and its callees)."""
    merged = {**(_context.get() or {}), **fields}
    token = _context.set(merged)
    try:
        yield
    finally:
        _context.reset(token)


def bound(name: str) -> Any:
    """A field of the current context (None outside one)."""
    return (_context.get() or {}).get(name)


def _secret(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in _SECRET_WORDS) and not lowered.endswith("_id")


def fields_of(record: logging.LogRecord) -> dict[str, Any]:
    """The extra fields of a record: the bound context, then the call's own."""
    out: dict[str, Any] = dict(_context.get() or {})
    for key, value in record.__dict__.items():
        if key not in _STANDARD and not key.startswith("_"):
            out[key] = value
    return {k: "[redacted]" if _secret(k) else v for k, v in out.items()}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extra = fields_of(record)
        line: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            # A stable name to filter on: the call's own, or its message template.
            "event": extra.pop("event", None) or str(record.msg),
            "message": record.getMessage(),
        }
        line.update(extra)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


# Control characters (CR and LF first) in a logged value: a client's path or header
# must never start a line of its own in a log an auditor reads.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _escape(text: str) -> str:
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


class TextFormatter(logging.Formatter):
    """One line per record, whatever its message and fields hold: control characters
    are written escaped (\\r, \\n, \\x1b...); a traceback follows on lines of its own,
    each indented, so no line of it can pass for a record."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        head = f"{self.formatTime(record)} {record.levelname} {record.name} "
        text = head + _escape(record.getMessage())
        extra = fields_of(record)
        extra.pop("event", None)
        shown = " ".join(
            f"{_escape(str(k))}={_escape(str(v))}" for k, v in extra.items() if v is not None
        )
        if shown:
            text += " " + shown
        if record.exc_info:
            trace = self.formatException(record.exc_info)
            text += "\n" + "\n".join("    | " + _escape(line) for line in trace.splitlines())
        return text


def configure(fmt: str, level: str, stream: TextIO | None = None) -> None:
    """Send every logger's lines to stderr in `fmt` at `level`; again to change them
    (SIGHUP): the one handler is replaced, never doubled."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_hanko", False)]:
        root.removeHandler(old)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler._hanko = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(LEVELS[level])
