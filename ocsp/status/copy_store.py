"""A responder host's own copy of the replicated status: one LMDB file per host, written
by the host's one copier process (ocsp/status/copier.py) and read by every responder
process on it (CopyView), so the host's memory is the working set of the page cache,
not certificates x processes, and a restart answers at once from what the copy holds.

Layout (all keys as Redis holds them, minus the prefix and kind):
- `ocsp.a` / `ocsp.b`: OCSP records by store key; `active` in meta names the one served.
  A whole load fills the other one and swaps in one commit, so responders never see a
  half-loaded copy and serials gone from Redis are gone from the copy;
- `envelopes`: responder envelopes by key hash; `files`: CRL files by name (CrlValue);
- `meta`: the CA's profile, `seq` (the last change the copy holds; absent: never
  loaded), `synced_at` (wall time it was last known equal to Redis), generations that
  tell responders to drop cached answers, and the copier's readiness `beat`.

The copy is a cache of Redis: it is written without fsync (a crash of the host loses
at most the last second, which the change log or a load brings back; LMDB stays
consistent), and a file that does not open is moved aside and loaded again.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import lmdb
import msgspec

from core.base.errors import HankoError

SCHEMA = b"1"
DIR_MODE = 0o700
FILE_MODE = 0o600
# Address space reserved, not disk: the file grows as it is filled.
MAP_SIZE = 1 << 40
DBS = (b"meta", b"ocsp.a", b"ocsp.b", b"envelopes", b"files")
_SCHEMA = b"schema"
_PROFILE = b"profile"
_SEQ = b"seq"
_ACTIVE = b"active"
_SYNCED = b"synced_at"
_STATUS_GEN = b"status_gen"
_ENVELOPE_GEN = b"envelope_gen"
_FILES_GEN = b"files_gen"
_LOG_ID = b"log_id"
_BEAT = b"beat"


class Beat(msgspec.Struct, array_like=True, frozen=True):
    """What the copier last said of the copy and its Redis: /readyz's body is `body`,
    served while `at` (wall seconds) is recent."""

    at: float
    ready: bool
    body: bytes


_BEAT_ENC = msgspec.msgpack.Encoder()
_BEAT_DEC = msgspec.msgpack.Decoder(Beat)


def _int(raw: bytes | None) -> int:
    return int(raw) if raw is not None else 0


def open_env(path: Path, *, readonly: bool) -> Any:
    """The copy's environment (created, 0700/0600, unless `readonly`)."""
    if not readonly:
        path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        path.chmod(DIR_MODE)
    elif not (path / "data.mdb").exists():
        raise HankoError(f"no status copy at {path} (is the copier running?)")
    env = lmdb.open(
        str(path),
        map_size=MAP_SIZE,
        subdir=True,
        readonly=readonly,
        max_dbs=len(DBS),
        max_readers=1024,
        # A cache of Redis: durability comes from there, not from an fsync per change.
        sync=False,
        metasync=False,
        # Random reads over a file larger than memory: readahead only evicts the
        # working set.
        readahead=False,
        mode=FILE_MODE,
    )
    if not readonly:
        for name in ("data.mdb", "lock.mdb"):
            (path / name).chmod(FILE_MODE)
    return env


class CopyStore:
    """The copier's side: the only writer."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.env = open_env(path, readonly=False)
            self.dbs = {name: self.env.open_db(name) for name in DBS}
        except lmdb.Error:
            # A copy damaged by a crash of the host: set aside, loaded again.
            aside = path.with_name(f"{path.name}.damaged-{int(time.time())}")
            path.rename(aside)
            self.env = open_env(path, readonly=False)
            self.dbs = {name: self.env.open_db(name) for name in DBS}
        with self.env.begin(write=True) as txn:
            schema = txn.get(_SCHEMA, db=self.dbs[b"meta"])
            if schema is None:
                txn.put(_SCHEMA, SCHEMA, db=self.dbs[b"meta"])
                txn.put(_ACTIVE, b"a", db=self.dbs[b"meta"])
            elif schema != SCHEMA:
                raise HankoError(f"{path}: a status copy of another version; remove it")

    def close(self) -> None:
        self.env.sync(True)
        self.env.close()

    def sync(self) -> None:
        self.env.sync(True)

    # -- reads --

    def _meta(self, key: bytes) -> bytes | None:
        with self.env.begin(db=self.dbs[b"meta"]) as txn:
            value: bytes | None = txn.get(key)
            return value

    def profile(self) -> bytes | None:
        return self._meta(_PROFILE)

    def seq(self) -> int | None:
        raw = self._meta(_SEQ)
        return int(raw) if raw is not None else None

    def log_id(self) -> bytes:
        """The change log entry the copy holds everything through (b"" before any)."""
        return self._meta(_LOG_ID) or b""

    def synced_at(self) -> float | None:
        raw = self._meta(_SYNCED)
        return float(raw) if raw is not None else None

    def counts(self) -> tuple[int, int]:
        """(responses, CRL files) held."""
        with self.env.begin() as txn:
            active = b"ocsp." + (txn.get(_ACTIVE, db=self.dbs[b"meta"]) or b"a")
            return (
                int(txn.stat(self.dbs[active])["entries"]),
                int(txn.stat(self.dbs[b"files"])["entries"]),
            )

    # -- writes --

    def set_profile(self, raw: bytes) -> None:
        with self.env.begin(write=True, db=self.dbs[b"meta"]) as txn:
            txn.put(_PROFILE, raw)

    def beat(self, beat: Beat, *, synced: bool) -> None:
        with self.env.begin(write=True, db=self.dbs[b"meta"]) as txn:
            txn.put(_BEAT, _BEAT_ENC.encode(beat))
            if synced:
                txn.put(_SYNCED, repr(beat.at).encode())

    def _inactive(self, txn: Any) -> bytes:
        return b"ocsp.b" if txn.get(_ACTIVE, db=self.dbs[b"meta"]) == b"a" else b"ocsp.a"

    def begin_load(self) -> None:
        """Empty the copy not served, to load into it."""
        with self.env.begin(write=True) as txn:
            txn.drop(self.dbs[self._inactive(txn)], delete=False)

    def put_loaded(self, items: list[tuple[bytes, bytes]]) -> None:
        """Responses of a load, into the copy not served yet."""
        items.sort()
        with self.env.begin(write=True) as txn:
            cur = txn.cursor(db=self.dbs[self._inactive(txn)])
            cur.putmulti(items, dupdata=False, overwrite=True, append=False)

    def finish_load(
        self,
        *,
        seq: int,
        log_id: bytes,
        envelopes: dict[bytes, bytes],
        files: dict[bytes, bytes],
        changes: Iterable[tuple[str, bytes, bytes | None]],
        at: float,
    ) -> None:
        """Serve the loaded copy, with the envelopes and files read beside it and the
        changes logged since the load began applied on top, in one commit."""
        with self.env.begin(write=True) as txn:
            meta = self.dbs[b"meta"]
            loaded = self._inactive(txn)
            for name, table in ((b"envelopes", envelopes), (b"files", files)):
                txn.drop(self.dbs[name], delete=False)
                for key, value in table.items():
                    txn.put(key, value, db=self.dbs[name])
            txn.put(_ACTIVE, loaded[-1:], db=meta)
            self._apply(txn, changes)
            txn.put(_SEQ, str(seq).encode(), db=meta)
            txn.put(_LOG_ID, log_id, db=meta)
            txn.put(_SYNCED, repr(at).encode(), db=meta)
            for gen in (_STATUS_GEN, _ENVELOPE_GEN, _FILES_GEN):
                txn.put(gen, str(_int(txn.get(gen, db=meta)) + 1).encode(), db=meta)

    def apply(
        self, *, seq: int, log_id: bytes, changes: Iterable[tuple[str, bytes, bytes | None]]
    ) -> None:
        """One logged change's keys as Redis holds them now: ("o"|"e"|"c", key, value
        or None when gone)."""
        with self.env.begin(write=True) as txn:
            meta = self.dbs[b"meta"]
            kinds = self._apply(txn, changes)
            txn.put(_SEQ, str(max(seq, _int(txn.get(_SEQ, db=meta)))).encode(), db=meta)
            txn.put(_LOG_ID, log_id, db=meta)
            txn.put(_STATUS_GEN, str(_int(txn.get(_STATUS_GEN, db=meta)) + 1).encode(), db=meta)
            for kind, gen in (("e", _ENVELOPE_GEN), ("c", _FILES_GEN)):
                if kind in kinds:
                    txn.put(gen, str(_int(txn.get(gen, db=meta)) + 1).encode(), db=meta)

    def _apply(self, txn: Any, changes: Iterable[tuple[str, bytes, bytes | None]]) -> set[str]:
        tables = {
            "o": self.dbs[b"ocsp." + (txn.get(_ACTIVE, db=self.dbs[b"meta"]) or b"a")],
            "e": self.dbs[b"envelopes"],
            "c": self.dbs[b"files"],
        }
        kinds: set[str] = set()
        for kind, key, value in changes:
            kinds.add(kind)
            if value is None:
                txn.delete(key, db=tables[kind])
            else:
                txn.put(key, value, db=tables[kind])
        return kinds


class CopyView:
    """A responder process's read-only view of the copy: the StatusView the CA host's
    LMDB store gives (core/store/ocsp_view.py), over one read transaction the responder
    renews on its tick. Before the first load completes an unknown serial is tryLater,
    not unauthorized: the copy does not know yet."""

    __slots__ = ("_active", "_dbs", "_env", "_meta", "_ocsp", "_owned", "_txn", "loaded")

    def __init__(self, path: Path, env: Any = None) -> None:
        """`env`: the copy already open in this process (py-lmdb opens a file once per
        process), left open by close()."""
        self._owned = env is None
        self._env = open_env(path, readonly=True) if env is None else env
        self._dbs = {name: self._env.open_db(name, create=False) for name in DBS}
        self._meta = self._dbs[b"meta"]
        self._txn = self._env.begin(buffers=False)
        self._active = b""
        self._ocsp = self._dbs[b"ocsp.a"]
        self.loaded = False
        self._look()

    def _look(self) -> None:
        active = self._txn.get(_ACTIVE, db=self._meta) or b"a"
        if active != self._active:
            self._active = active
            self._ocsp = self._dbs[b"ocsp." + active]
        self.loaded = self._txn.get(_SEQ, db=self._meta) is not None

    def renew(self) -> None:
        self._txn.abort()
        self._txn = self._env.begin(buffers=False)
        self._look()

    def close(self) -> None:
        self._txn.abort()
        if self._owned:
            self._env.close()

    def response(self, key: bytes) -> bytes | None:
        value: bytes | None = self._txn.get(key, db=self._ocsp)
        return value

    def issued(self, key: bytes) -> bool:
        return not self.loaded or self._txn.get(key, db=self._ocsp) is not None

    def envelope(self, key_hash: bytes) -> bytes | None:
        value: bytes | None = self._txn.get(key_hash, db=self._dbs[b"envelopes"])
        return value

    def status_generation(self) -> bytes | None:
        value: bytes | None = self._txn.get(_STATUS_GEN, db=self._meta)
        return value

    def envelope_generation(self) -> bytes | None:
        value: bytes | None = self._txn.get(_ENVELOPE_GEN, db=self._meta)
        return value

    def files_generation(self) -> bytes | None:
        value: bytes | None = self._txn.get(_FILES_GEN, db=self._meta)
        return value

    def file(self, name: bytes) -> bytes | None:
        value: bytes | None = self._txn.get(name, db=self._dbs[b"files"])
        return value

    def profile(self) -> bytes | None:
        value: bytes | None = self._txn.get(_PROFILE, db=self._meta)
        return value

    def beat(self) -> Beat | None:
        raw = self._txn.get(_BEAT, db=self._meta)
        if raw is None:
            return None
        try:
            return _BEAT_DEC.decode(raw)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return None
