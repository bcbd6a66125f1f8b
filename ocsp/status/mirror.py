"""A responder host's copy of the replicated status, with no I/O: what a responder
process answers from when its status comes from Redis (ocsp/status/redis_mirror.py fills it).

It offers the responder what the LMDB view offers (responses, whether a serial was
issued, envelopes, the generations that revalidate cached answers), plus the CRL files
and CA certificates the CA's profile names. A key the copy has never seen is a serial
never issued (unauthorized, never "good"); a response past its nextUpdate is tryLater.

Readiness is decided here too, from what the edge observed (`Observed`), so the rules
are tested without Redis: ready once loaded, while Redis answers, holds a whole copy
(`seq` present) and its replication link has not been down longer than `max_lag`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import msgspec
from cryptography import x509

from core.base.httpdate import http_date
from ocsp.status.crl_files import CrlFile
from ocsp.status.redis_layout import CRL_VALUE, Layout, Profile

_PKIX_CERT = b"application/pkix-cert"
_PKIX_CRL = b"application/pkix-crl"
# A CA certificate changes only when the CA renews it; a day in a CDN is harmless.
CA_FILE_MAX_AGE = 86400
ROOT_CRL = "root.crl"


class Observed(msgspec.Struct, frozen=True):
    """What the edge last saw of its Redis (a replica, usually)."""

    reachable: bool
    seq: int | None  # Redis's `seq`: None when it has none (empty, or being rebuilt)
    role: str = "master"  # INFO replication's role: "master" or "slave"
    link_up: bool = True  # a replica's master_link_status
    link_down_for: float = 0.0  # seconds the replica's link has been down
    unreachable_for: float = 0.0  # seconds since Redis last answered


class Readiness(msgspec.Struct, frozen=True):
    """The body of /readyz."""

    ready: bool
    reason: str  # "" when ready
    loaded: bool
    redis: str  # "up" or "down"
    role: str  # "primary" or "replica"
    link: str  # "up", "down" (a replica's link to its primary) or "n/a"
    lag_seconds: float  # how long what is served may trail the primary, at most
    seq: int  # the last change applied here
    redis_seq: int | None
    responses: int
    crls: int


def _etag(der: bytes) -> bytes:
    # From the content, so every responder host gives a file the same ETag.
    return b'"%s"' % hashlib.sha256(der).hexdigest()[:24].encode()


def file_entry(der: bytes, last_modified: int, max_age: int, *, crl: bool) -> CrlFile:
    """A served file with the lines the LMDB side sends for it (a CRL: no-transform)."""
    tag = _etag(der)
    lines = b"ETag: %s\r\nLast-Modified: %s\r\nCache-Control: public, max-age=%d" % (
        tag,
        http_date(last_modified),
        max_age,
    )
    if crl:
        lines += b", no-transform"
    return CrlFile(
        body=der, etag=tag, mtime=last_modified, headers=lines + b"\r\n", version=(0, 0, 0)
    )


def _issued_at(der: bytes) -> int:
    """A CA certificate's Last-Modified: its notBefore (the file's mtime is not replicated)."""
    try:
        return int(x509.load_der_x509_certificate(der).not_valid_before_utc.timestamp())
    except ValueError:
        return 0


class Mirror:
    """The copy, swapped whole on a load and patched by each change."""

    def __init__(self, layout: Layout, profile: Profile, *, max_lag: float) -> None:
        self.layout = layout
        self.profile = profile
        self.max_lag = max_lag
        self._o = layout.ocsp(b"")
        self._e = layout.envelope(b"")
        self._c = layout.crl("")
        self._responses: dict[bytes, bytes] = {}
        self._envelopes: dict[bytes, bytes] = {}
        self._crls: dict[str, CrlFile] = {}
        self._files = {
            path.encode(): file_entry(der, _issued_at(der), CA_FILE_MAX_AGE, crl=False)
            for path, der in profile.ca_files.items()
        }
        self._root_crl = profile.root_crl_path.encode()
        self.seq = -1  # nothing loaded yet
        self._status = 0
        self._envelope_gen = 0
        self.loads = 0
        self.changes = 0

    @property
    def loaded(self) -> bool:
        return self.seq >= 0

    # -- filled by the edge --

    def load(self, seq: int, items: Iterable[tuple[bytes, bytes]]) -> None:
        """Everything Redis holds, read after subscribing (so no change is missed)."""
        responses: dict[bytes, bytes] = {}
        envelopes: dict[bytes, bytes] = {}
        crls: dict[str, CrlFile] = {}
        for key, value in items:
            self._put(key, value, responses, envelopes, crls)
        self._responses, self._envelopes, self._crls = responses, envelopes, crls
        self.seq = seq
        self.loads += 1
        self._status += 1
        self._envelope_gen += 1

    def apply(self, seq: int, items: Iterable[tuple[bytes, bytes | None]]) -> None:
        """One change notification's keys, as Redis holds them now (None: gone)."""
        touched_envelopes = False
        for key, value in items:
            if value is None:
                touched_envelopes |= self._drop(key)
            else:
                touched_envelopes |= self._put(
                    key, value, self._responses, self._envelopes, self._crls
                )
        self.seq = max(self.seq, seq)
        self.changes += 1
        self._status += 1
        if touched_envelopes:  # a renewed responder certificate: every answer changes
            self._envelope_gen += 1

    def _put(
        self,
        key: bytes,
        value: bytes,
        responses: dict[bytes, bytes],
        envelopes: dict[bytes, bytes],
        crls: dict[str, CrlFile],
    ) -> bool:
        """Store one key's value; True when it was an envelope."""
        if key.startswith(self._o):
            responses[key[len(self._o) :]] = value
        elif key.startswith(self._e):
            envelopes[key[len(self._e) :]] = value
            return True
        elif key.startswith(self._c):
            try:
                crl = CRL_VALUE.decode(value)
            except (msgspec.DecodeError, msgspec.ValidationError):
                return False  # not ours: never served
            crls[key[len(self._c) :].decode("latin-1")] = file_entry(
                crl.der, crl.last_modified, self.profile.crl_max_age, crl=True
            )
        return False

    def _drop(self, key: bytes) -> bool:
        if key.startswith(self._o):
            self._responses.pop(key[len(self._o) :], None)
        elif key.startswith(self._e):
            return self._envelopes.pop(key[len(self._e) :], None) is not None
        elif key.startswith(self._c):
            self._crls.pop(key[len(self._c) :].decode("latin-1"), None)
        return False

    # -- what the responder reads (the LMDB view's interface) --

    def response(self, key: bytes) -> bytes | None:
        return self._responses.get(key)

    def issued(self, key: bytes) -> bool:
        return key in self._responses

    def envelope(self, key_hash: bytes) -> bytes | None:
        return self._envelopes.get(key_hash)

    def renew(self) -> None:
        """Nothing to do: changes are applied as they arrive."""

    def status_generation(self) -> int:
        return self._status

    def envelope_generation(self) -> int:
        return self._envelope_gen

    def close(self) -> None:
        self._responses.clear()

    # -- files --

    def crl(self, name: str) -> CrlFile | None:
        return self._crls.get(name)

    def ca_file(self, path: bytes) -> CrlFile | None:
        if path == self._root_crl and self._root_crl:
            return self._crls.get(ROOT_CRL)
        return self._files.get(path)

    def content_type(self, path: bytes) -> bytes:
        return _PKIX_CRL if path == self._root_crl else _PKIX_CERT

    def ca_file_paths(self) -> list[str]:
        paths = list(self.profile.ca_files)
        if self.profile.root_crl_path:
            paths.append(self.profile.root_crl_path)
        return paths

    # -- readiness --

    def readiness(self, seen: Observed) -> Readiness:
        replica = seen.role == "slave"
        if not seen.reachable:
            lag = seen.unreachable_for
        elif replica and not seen.link_up:
            lag = seen.link_down_for
        else:
            lag = 0.0
        if not self.loaded:
            reason = "the first load from Redis has not completed"
        elif not seen.reachable and lag > self.max_lag:
            reason = f"Redis has not answered for {lag:.1f} s"
        elif seen.reachable and seen.seq is None:
            reason = "Redis holds no status (empty or being rebuilt): serving the last copy"
        elif lag > self.max_lag:
            reason = f"the replica's link to its primary has been down for {lag:.1f} s"
        else:
            reason = ""
        return Readiness(
            ready=not reason,
            reason=reason,
            loaded=self.loaded,
            redis="up" if seen.reachable else "down",
            role="replica" if replica else "primary",
            link=("up" if seen.link_up else "down") if replica else "n/a",
            lag_seconds=round(lag, 3),
            seq=self.seq,
            redis_seq=seen.seq,
            responses=len(self._responses),
            crls=len(self._crls),
        )
