"""Files that must be whole and durable: CRLs, CA certificates."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path


def write_atomically(path: Path, parts: Sequence[bytes], mtime: int | None = None) -> None:
    """Write `parts` to `path` so that a reader sees the old file or the whole new one,
    and the new one survives a crash once this returns. `mtime` (epoch seconds) becomes
    the file's modification time: the CRL's thisUpdate, which HTTP serves as
    Last-Modified."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.writelines(parts)
            fh.flush()
            os.fsync(fh.fileno())
        if mtime is not None:
            os.utime(tmp, (mtime, mtime))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
