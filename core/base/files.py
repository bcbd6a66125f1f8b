"""Files that must be whole and durable: CRLs, CA certificates."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path


def write_atomically(
    path: Path, parts: Sequence[bytes], mtime: int | None = None, *, mode: int = 0o644
) -> None:
    """Write `parts` to `path` so that a reader sees the old file or the whole new one,
    and the new one survives a crash once this returns. `mtime` (epoch seconds) becomes
    the file's modification time: the CRL's thisUpdate, which HTTP serves as
    Last-Modified. `mode` holds from the first byte (0600 for a private key)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        os.fchmod(fd, mode)  # not narrowed by the umask, nor widened by an old file
        with os.fdopen(fd, "wb") as fh:
            fh.writelines(parts)
            fh.flush()
            os.fsync(fh.fileno())
        if mtime is not None:
            os.utime(tmp, (mtime, mtime))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    sync_folder(path.parent)


def sync_folder(path: Path) -> None:
    """fsync a folder: the names created, renamed or removed in it survive a crash."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
