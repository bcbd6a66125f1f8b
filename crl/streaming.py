"""A CRL file written while its entries are still being read: a thread of its own hashes
and writes each part as the store hands it over (hashlib and file writes release the
GIL, reading the store does not), so a full CRL costs about its read, not read + hash +
write. The first bytes are left for the signed CRL's header, known once the signature
is; the file becomes visible under its name only whole and on disk, as
core/base/files.write_atomically makes it."""

from __future__ import annotations

import hashlib
import os
import queue
import threading
from pathlib import Path

from core.base.files import sync_folder

# Parts in flight between the reader and the writer thread (each a chunk of entries).
DEPTH = 32
# Written bytes handed to the disk as the file grows, so the final fsync has little left.
SYNC_EVERY = 8 << 20


class StreamedFile:
    def __init__(self, path: Path, reserve: int, hash_name: str, *, mode: int = 0o644) -> None:
        self.path = path
        self._tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        os.fchmod(self._fd, mode)
        self._reserve = reserve
        self._hash = hashlib.new(hash_name)
        self._parts: queue.Queue[bytes | None] = queue.Queue(DEPTH)
        self._error: OSError | None = None
        self._size = 0
        self._thread = threading.Thread(target=self._drain, name="crl-writer", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        offset = self._reserve
        synced = offset
        while (part := self._parts.get()) is not None:
            if self._error is not None:
                continue  # keep taking parts so the reader never blocks
            self._hash.update(part)
            try:
                view = memoryview(part)
                while view:
                    n = os.pwrite(self._fd, view, offset)
                    offset += n
                    view = view[n:]
                if offset - synced >= SYNC_EVERY:
                    os.fdatasync(self._fd)
                    synced = offset
            except OSError as exc:
                self._error = exc
        self._size = offset

    def add(self, part: bytes) -> None:
        self._parts.put(part)

    def digest(self) -> bytes:
        """Of every part added, once all are written; the write's error, if any."""
        self._parts.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._hash.digest()

    def finish(self, header: bytes, trailer: bytes, mtime: int) -> None:
        """The header in the reserved bytes, the trailer at the end, then on disk and
        under its name (after digest())."""
        if len(header) != self._reserve:
            raise ValueError("the header does not fit the bytes reserved for it")
        os.pwrite(self._fd, header, 0)
        os.pwrite(self._fd, trailer, self._size)
        os.fsync(self._fd)
        os.close(self._fd)
        self._fd = -1
        os.utime(self._tmp, (mtime, mtime))
        os.replace(self._tmp, self.path)
        sync_folder(self.path.parent)

    def abort(self) -> None:
        if self._thread.is_alive():
            self._parts.put(None)
            self._thread.join()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self._tmp.unlink(missing_ok=True)
