"""The read-only view an OCSP responder answers from: pre-signed responses, whether a
serial was issued, responder envelopes and the two generations that say when cached
answers must be looked at again.

One LMDB read transaction, renewed by the caller (py-lmdb has no renew(): a fresh read
transaction ten times a second is cheap). Keys are store keys (keys.serial_key).
"""

from __future__ import annotations

from typing import Any

import lmdb

from core.store.keys import ENVELOPE_GENERATION_KEY, ENVELOPE_PREFIX, STATUS_GENERATION_KEY


class OcspView:
    __slots__ = ("_certs", "_counters", "_env", "_meta", "_ocsp", "_txn")

    def __init__(self, env: Any, dbs: dict[bytes, Any]) -> None:
        self._env = env
        self._ocsp = dbs[b"ocsp"]
        self._certs = dbs[b"certs"]
        self._meta = dbs[b"meta"]
        self._counters = dbs[b"counters"]
        self._txn = self._begin()

    def _begin(self) -> Any:
        try:
            return self._env.begin(buffers=False)
        except lmdb.MapResizedError:
            # The writer grew the map: adopt its size (this process has no other
            # transaction open) and read on.
            self._env.set_mapsize(0)
            return self._env.begin(buffers=False)

    def renew(self) -> None:
        """Read from the store as it is now."""
        self._txn.abort()
        self._txn = self._begin()

    def close(self) -> None:
        self._txn.abort()

    def response(self, key: bytes) -> bytes | None:
        """A serial's encoded OcspRecord (records.ocsp_response_in reads one hash's)."""
        value: bytes | None = self._txn.get(key, db=self._ocsp)
        return value

    def issued(self, key: bytes) -> bool:
        return self._txn.get(key, db=self._certs) is not None

    def envelope(self, key_hash: bytes) -> bytes | None:
        """The encoded envelope (ocsp.response_codec.ResponseEnvelope) of a responder key."""
        value: bytes | None = self._txn.get(ENVELOPE_PREFIX + key_hash, db=self._meta)
        return value

    def status_generation(self) -> bytes | None:
        """Moves whenever a certificate record is written (ReadTxn.status_generation)."""
        value: bytes | None = self._txn.get(STATUS_GENERATION_KEY, db=self._counters)
        return value

    def envelope_generation(self) -> bytes | None:
        """Moves when a responder key's envelope (its certificate) is replaced."""
        value: bytes | None = self._txn.get(ENVELOPE_GENERATION_KEY, db=self._counters)
        return value
