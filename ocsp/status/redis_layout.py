"""Where the replicated status lives in Redis and how it is encoded (no I/O): the one
layout the CA side (core/replication) writes and responder hosts' copiers (copier.py) read.

- `{prefix}o:{ocsp key}`: a serial's OCSP record, the bytes the store holds
  (OcspRecord.encode), expiring at its nextUpdate;
- `{prefix}e:{key hash}`: a responder key's response envelope;
- `{prefix}c:{file name}`: a CRL file, msgpack [Last-Modified epoch seconds, DER];
- `{prefix}profile`: what a responder host knows of the CA (Profile);
- `{prefix}seq`: the last change of the store's feed that Redis has, in decimal;
- channel `{prefix}changes`: after each batch, msgpack [seq, [keys], reload]; reload
  true (after a rebuild) means "read everything again", keys then being empty;
- stream `{prefix}log`: the same batches, kept (about LOG_ENTRIES of them) so that a
  responder host that was away catches up from where its copy stands: entry id
  `{last seq}-n`, fields `first` (the batch's first seq) and `keys` (msgpack), or
  `reload` after a rebuild (Redis 7: ids with an automatic sequence part).
"""

from __future__ import annotations

import msgspec

from core.store.records import OcspRecord
from core.store.replication import CRL, ENVELOPE, OCSP

_ENCODE = msgspec.msgpack.Encoder()
_KEYS = msgspec.msgpack.Decoder(list[bytes])
# Batches the change log keeps: a responder host away for longer loads everything again.
LOG_ENTRIES = 100_000


class Change(msgspec.Struct, array_like=True, frozen=True):
    seq: int
    keys: list[bytes]
    reload: bool = False


class CrlValue(msgspec.Struct, array_like=True, frozen=True):
    last_modified: int
    der: bytes


class Profile(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What a responder host needs to know about the CA besides the responses: the
    issuing CA's certificate (the CertIDs it answers for), the CertID hashes
    pre-signed, where it serves what (the paths of the URLs in the certificates) and
    the CA certificates to serve. It has no other configuration of the CA."""

    issuer: bytes  # the first issuing CA's certificate, DER
    hashes: list[int]  # CertIdHash values pre-signed
    ocsp_path: str
    crl_path: str
    ca_files: dict[str, bytes] = msgspec.field(default_factory=dict)  # URL path -> DER
    root_crl_path: str = ""  # where the replicated root.crl is served ("": nowhere)
    crl_max_age: int = 60
    issuers: list[bytes] = msgspec.field(default_factory=list)  # every issuer's, DER


CHANGE = msgspec.msgpack.Decoder(Change)
CRL_VALUE = msgspec.msgpack.Decoder(CrlValue)
PROFILE = msgspec.msgpack.Decoder(Profile)


class Layout:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix.encode()
        self.seq = self.prefix + b"seq"
        self.profile = self.prefix + b"profile"
        self.channel = self.prefix + b"changes"
        self.log = self.prefix + b"log"

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


def change_message(seq: int, keys: list[bytes], *, reload: bool = False) -> bytes:
    return _ENCODE.encode(Change(seq, keys, reload))


def profile_value(profile: Profile) -> bytes:
    return _ENCODE.encode(profile)


class LogEntry(msgspec.Struct, frozen=True):
    """One batch of the change log."""

    id: bytes
    last: int  # the batch's last seq (the id's first part)
    first: int  # its first seq: a copy at seq >= first - 1 misses nothing by applying it
    keys: list[bytes]
    reload: bool = False


def log_fields(first: int, keys: list[bytes], *, reload: bool = False) -> dict[bytes, bytes]:
    fields = {b"first": str(first).encode()}
    if reload:
        fields[b"reload"] = b"1"
    else:
        fields[b"keys"] = _ENCODE.encode(keys)
    return fields


def log_entry(entry_id: bytes, fields: dict[bytes, bytes]) -> LogEntry:
    """A stream entry as read; ValueError when it is not one of ours."""
    try:
        last = int(entry_id.split(b"-", 1)[0])
        first = int(fields[b"first"])
        reload = fields.get(b"reload") == b"1"
        keys = [] if reload else _KEYS.decode(fields[b"keys"])
    except (KeyError, ValueError, msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ValueError(f"not a change log entry: {entry_id!r}") from exc
    return LogEntry(id=entry_id, last=last, first=first, keys=keys, reload=reload)


def log_step(entry: LogEntry, seq: int) -> str:
    """What a copy at `seq` does with the next entry: "skip" (it has it), "apply", or
    "load" (a rebuild, or changes between that the log no longer has)."""
    if entry.reload:
        return "load"
    if entry.last <= seq:
        return "skip"
    if entry.first > seq + 1:
        return "load"
    return "apply"
