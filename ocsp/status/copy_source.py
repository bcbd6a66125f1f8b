"""A responder process's Source on a responder host (`hanko responder`): the host's
copy of the replicated status (ocsp/status/copy_store.py), read-only, with the CA
certificates, CRL files and readiness the copier keeps in it. The CA's profile in the
copy says what is served where; when the copier stores a new one, the responder
exits and is started again with it (`Source.stale`).
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import msgspec
from cryptography import x509

from core.base.errors import HankoError
from core.base.httpdate import http_date
from ocsp.status.copy_store import CopyView
from ocsp.status.crl_files import CrlFile
from ocsp.status.paths import StatusPaths
from ocsp.status.redis_layout import CRL_VALUE, PROFILE
from ocsp.status.sources import Source

_PKIX_CERT = b"application/pkix-cert"
_PKIX_CRL = b"application/pkix-crl"
# A CA certificate changes only when the CA renews it; a day in a CDN is harmless.
CA_FILE_MAX_AGE = 86400
ROOT_CRL = "root.crl"
# The copier reports once a second; a report older than this means it is not running.
BEAT_STALE = 5.0
_NO_BEAT = b'{"ready": false, "reason": "the copier has not reported yet"}\n'


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


class _Files:
    """CRL files out of the copy, each decoded once per change of the copy's files."""

    def __init__(self, view: CopyView, max_age: int) -> None:
        self._view = view
        self._max_age = max_age
        self._gen: bytes | None = None
        self._decoded: dict[str, CrlFile | None] = {}

    def get(self, name: str) -> CrlFile | None:
        gen = self._view.files_generation()
        if gen != self._gen:
            self._gen = gen
            self._decoded = {}
        if name in self._decoded:
            return self._decoded[name]
        raw = self._view.file(name.encode("latin-1"))
        entry = None
        if raw is not None:
            try:
                crl = CRL_VALUE.decode(raw)
            except (msgspec.DecodeError, msgspec.ValidationError):
                crl = None  # not ours: never served
            if crl is not None:
                entry = file_entry(crl.der, crl.last_modified, self._max_age, crl=True)
        if len(self._decoded) < 4096:  # names are checked by nobody here: keep it bounded
            self._decoded[name] = entry
        return entry


def copy_source(path: Path, env: Any = None) -> Source:
    """The Source over the copy at `path`, which must hold the CA's profile (`env`: the
    copy already open in this process)."""
    view = CopyView(path, env)
    raw = view.profile()
    if raw is None:
        view.close()
        raise HankoError(f"the status copy at {path} holds no CA profile yet")
    profile = PROFILE.decode(raw)
    files = _Files(view, profile.crl_max_age)
    ca_files = {
        p.encode(): file_entry(der, _issued_at(der), CA_FILE_MAX_AGE, crl=False)
        for p, der in profile.ca_files.items()
    }
    root_crl = profile.root_crl_path.encode()

    def ca_file(p: bytes) -> CrlFile | None:
        if root_crl and p == root_crl:
            return files.get(ROOT_CRL)
        return ca_files.get(p)

    def ready() -> tuple[bool, bytes]:
        beat = view.beat()
        if beat is None:
            return False, _NO_BEAT
        silent = time.time() - beat.at
        if silent > BEAT_STALE:
            return False, msgspec.json.encode(
                {"ready": False, "reason": f"the copier has not reported for {silent:.0f} s"}
            ) + b"\n"
        return beat.ready, beat.body

    paths = [*profile.ca_files, *([profile.root_crl_path] if profile.root_crl_path else [])]
    return Source(
        view=view,
        issuers=[x509.load_der_x509_certificate(d) for d in (profile.issuers or [profile.issuer])],
        hashes=profile.hashes,
        paths=StatusPaths(
            ocsp=profile.ocsp_path, crl=profile.crl_path, ca_files=dict.fromkeys(paths, "")
        ),
        crl=files.get,
        ca_file=ca_file,
        content_type=lambda p: _PKIX_CRL if root_crl and p == root_crl else _PKIX_CERT,
        ready=ready,
        close=view.close,
        stale=lambda: view.profile() != raw,
    )
