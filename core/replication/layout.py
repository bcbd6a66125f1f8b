"""Where the replicated status lives in Redis and how it is encoded (no I/O): one
layout the CA side writes and the responders read.

- `{prefix}o:{ocsp key}`: a serial's OCSP record, the bytes the store holds
  (OcspRecord.encode), expiring at its nextUpdate;
- `{prefix}e:{key hash}`: a responder key's response envelope;
- `{prefix}c:{file name}`: a CRL file, msgpack [Last-Modified epoch seconds, DER];
- `{prefix}seq`: the last change of the store's feed that Redis has, in decimal;
- channel `{prefix}changes`: after each batch, msgpack [seq, [keys]].
"""

from __future__ import annotations

import msgspec

from core.store.records import OcspRecord
from core.store.replication import CRL, ENVELOPE, OCSP

_ENCODE = msgspec.msgpack.Encoder()


class Change(msgspec.Struct, array_like=True, frozen=True):
    seq: int
    keys: list[bytes]


CHANGE = msgspec.msgpack.Decoder(Change)


class CrlValue(msgspec.Struct, array_like=True, frozen=True):
    last_modified: int
    der: bytes


CRL_VALUE = msgspec.msgpack.Decoder(CrlValue)


class Layout:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix.encode()
        self.seq = self.prefix + b"seq"
        self.channel = self.prefix + b"changes"

    def key(self, change: bytes) -> bytes:
        """The Redis key of a feed entry (kind | what): the same kind byte and what."""
        if change[:1] not in (OCSP, ENVELOPE, CRL):
            raise ValueError(f"unknown change kind {change[:1]!r}")
        return self.prefix + change[:1] + b":" + change[1:]

    def ocsp(self, ocsp_key: bytes) -> bytes:
        return self.prefix + OCSP + b":" + ocsp_key

    def envelope(self, key_hash: bytes) -> bytes:
        return self.prefix + ENVELOPE + b":" + key_hash

    def crl(self, name: str) -> bytes:
        return self.prefix + CRL + b":" + name.encode()


def ocsp_expiry_ms(raw: bytes) -> int | None:
    """When a stored record's key should expire (its nextUpdate, ms), or None when the
    record holds no response yet (a placeholder: nothing to serve)."""
    rec = OcspRecord.decode(raw)
    if not rec.signed or rec.next_update <= 0:
        return None
    return rec.next_update * 1000


def crl_value(last_modified: int, der: bytes) -> bytes:
    return _ENCODE.encode(CrlValue(last_modified, der))


def change_message(seq: int, keys: list[bytes]) -> bytes:
    return _ENCODE.encode(Change(seq, keys))
