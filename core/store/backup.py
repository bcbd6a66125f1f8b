"""Backups of the store: a consistent, compacted copy taken while the service writes,
in one file with its checksum, and a restore that refuses to overwrite anything.

A backup is LMDB's own compacting copy (mdb_env_copy2 with MDB_CP_COMPACT): it reads
inside one read transaction, so it holds exactly what was committed when it began and
never blocks the writer. The file is a tar archive of two members, `data.mdb` and
`MANIFEST.json` (when, from where, the SHA-256 of data.mdb and every database's entry
count), so `tar -xf` and `sha256sum` can check it without hanko. It is written under a
temporary name, mode 0600, flushed to disk, then renamed: a failed or interrupted
backup never leaves a file that looks whole.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import lmdb

from core.base.errors import StoreError
from core.base.files import sync_folder
from core.store.backend import Store
from core.store.environment import FILE_MODE, LmdbStore
from core.store.keys import DB_NAMES

FORMAT = "hanko-store-backup-1"
_CHUNK = 1 << 20


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def backup(store: LmdbStore, out: Path, *, now: dt.datetime) -> dict[str, Any]:
    """Write the backup of `store` to `out`; its manifest."""
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".hanko-backup-") as tmp:
        os.chmod(tmp, 0o700)
        data = Path(tmp) / "data.mdb"
        fd = os.open(data, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        try:
            counts = store.stat()  # before the copy: what the copy holds at least
            store.env.copyfd(fd, compact=True)
            os.fsync(fd)
        except lmdb.Error as exc:
            raise StoreError(f"backup failed: {exc}") from exc
        finally:
            os.close(fd)
        manifest = {
            "format": FORMAT,
            "created_at": now.isoformat(),
            "source": str(store.path),
            "data_sha256": _sha256(data),
            "data_bytes": data.stat().st_size,
            "entries": counts,
        }
        partial = Path(tmp) / "backup.tar"
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        with os.fdopen(fd, "wb") as fh:
            with tarfile.open(fileobj=fh, mode="w", format=tarfile.PAX_FORMAT) as tar:
                body = json.dumps(manifest, indent=2, sort_keys=True).encode() + b"\n"
                info = tarfile.TarInfo("MANIFEST.json")
                info.size, info.mode, info.mtime = len(body), 0o600, int(now.timestamp())
                tar.addfile(info, io.BytesIO(body))
                tar.add(data, arcname="data.mdb", recursive=False, filter=_private)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(partial, out)
        sync_folder(out.parent)
    return manifest


def _private(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.mode, info.uid, info.gid, info.uname, info.gname = 0o600, 0, 0, "", ""
    return info


def read_manifest(archive: Path) -> dict[str, Any]:
    try:
        with tarfile.open(archive, mode="r:") as tar:
            member = tar.extractfile("MANIFEST.json")
            if member is None:
                raise KeyError("MANIFEST.json")
            manifest: dict[str, Any] = json.loads(member.read())
    except (OSError, tarfile.TarError, KeyError, ValueError) as exc:
        raise StoreError(f"{archive} is not a hanko backup: {exc}") from None
    if manifest.get("format") != FORMAT:
        raise StoreError(f"{archive}: unknown backup format {manifest.get('format')!r}")
    return manifest


def is_empty(store: Store) -> bool:
    """Nothing but the schema: no record of any kind, not even an audit entry."""
    return all(n == 0 for name, n in store.stat().items() if name != "meta")


def _in_use(path: Path) -> list[int]:
    """Processes other than this one with the environment open (its reader table)."""
    if not (path / "data.mdb").exists():
        return []
    env = lmdb.open(str(path), readonly=True, lock=True, max_dbs=len(DB_NAMES) + 8)
    try:
        pids = set()
        for line in env.readers().splitlines()[1:]:
            fields = line.split()
            if fields and fields[0].isdigit() and int(fields[0]) != os.getpid():
                pids.add(int(fields[0]))
        return sorted(pid for pid in pids if _alive(pid))
    finally:
        env.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def restore(archive: Path, target: Path, *, map_size: int) -> dict[str, Any]:
    """Put the backup's store at `target`, which must hold no store or an empty one
    that no process has open; the manifest, checked."""
    manifest = read_manifest(archive)
    busy = _in_use(target)
    if busy:
        raise StoreError(
            f"the store at {target} is open by process {', '.join(map(str, busy))}:"
            " stop hanko serve first"
        )
    if (target / "data.mdb").exists():
        existing = LmdbStore(target, map_size=map_size, readonly=True)
        try:
            if not is_empty(existing):
                raise StoreError(
                    f"the store at {target} is not empty: restore only into a new one"
                    " (move it aside, or point [store] path at a folder that does not exist)"
                )
        finally:
            existing.close()
    target.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(target, 0o700)
    partial = target / ".data.mdb.restore"
    try:
        with tarfile.open(archive, mode="r:") as tar:
            member = tar.extractfile("data.mdb")
            if member is None:
                raise StoreError(f"{archive} has no data.mdb")
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
            digest = hashlib.sha256()
            with os.fdopen(fd, "wb") as fh:
                while chunk := member.read(_CHUNK):
                    digest.update(chunk)
                    fh.write(chunk)
                fh.flush()
                os.fsync(fh.fileno())
        if digest.hexdigest() != manifest["data_sha256"]:
            raise StoreError(f"{archive}: data.mdb does not match its checksum (damaged copy)")
        (target / "lock.mdb").unlink(missing_ok=True)
        os.replace(partial, target / "data.mdb")
        sync_folder(target)
    except (OSError, tarfile.TarError) as exc:
        raise StoreError(f"restore from {archive} failed: {exc}") from None
    finally:
        partial.unlink(missing_ok=True)
    restored = LmdbStore(target, map_size=map_size, readonly=True)
    try:
        counts = restored.stat()
    finally:
        restored.close()
    for name, n in manifest["entries"].items():
        if counts.get(name, 0) < n:
            raise StoreError(
                f"restored store has {counts.get(name, 0)} {name} entries, "
                f"the backup's manifest says at least {n}"
            )
    return manifest
