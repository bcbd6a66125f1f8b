"""CRL files over HTTP, for CDNs, on the status listener next to OCSP (RFC 5019
plain HTTP; one status host name serves /ocsp and /crl/): conditional GETs answered
with 304.

Pure parts (which file a path names, the validators, whether a request is answered by
304) are functions; `PublishedCrls` is the edge that reads the files. An open file
keeps its content while a rebuild renames a new CRL over the name.
"""

from __future__ import annotations

import email.utils
import os
import re
from collections.abc import Mapping
from pathlib import Path

import msgspec

from core.base.httpdate import http_date

# Shard CRLs and their deltas, in an issuer's folder or (the one-issuer form's issuer)
# at the top, and the root CA's CRL (`hanko ca root-crl`).
_NAME = re.compile(
    r"^(root|((?:[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?/)?(0|[1-9][0-9]{0,4})(-delta)?))\.crl$"
)


def file_for(name: str) -> str | None:
    """The published file the path below the CRL path names, or None (then 404)."""
    return name if _NAME.fullmatch(name) else None


def etag(st: os.stat_result) -> bytes:
    # A rebuild renames a new file over the name: a new inode, and a new mtime (its
    # thisUpdate), with every new content.
    return f'"{st.st_ino:x}-{st.st_size:x}-{st.st_mtime_ns:x}"'.encode()


def not_modified(headers: Mapping[bytes, bytes], tag: bytes, mtime: int) -> bool:
    """RFC 9110 13.2.2: If-None-Match decides when present; else If-Modified-Since."""
    inm = headers.get(b"if-none-match")
    if inm is not None:
        if inm.strip() == b"*":
            return True
        candidates = [c.strip().removeprefix(b"W/") for c in inm.split(b",")]
        return tag in candidates
    ims = headers.get(b"if-modified-since")
    if ims is not None:
        try:
            since = email.utils.parsedate_to_datetime(ims.decode("latin-1"))
        except (TypeError, ValueError, IndexError):
            return False  # an unparsable date is ignored (RFC 9110 13.1.3)
        if since.tzinfo is None:
            return False
        return mtime <= int(since.timestamp())
    return False


def response_headers(st: os.stat_result, *, max_age: int) -> list[tuple[bytes, bytes]]:
    return [
        (b"content-type", b"application/pkix-crl"),
        (b"etag", etag(st)),
        (b"last-modified", http_date(int(st.st_mtime))),
        (b"cache-control", f"public, max-age={max_age}, no-transform".encode()),
    ]


class CrlFile(msgspec.Struct, frozen=True, gc=False):
    body: bytes
    etag: bytes
    mtime: int  # Last-Modified, the CRL's thisUpdate
    # ETag, Last-Modified and Cache-Control lines, each ending in CRLF.
    headers: bytes
    version: tuple[int, int, int]  # inode, size, mtime: a rebuild changes all three


class PublishedCrls:
    """The partition CRLs of the publish directory, for the status listener: each
    file read once per version (a rebuild renames a new file over the name), looked
    at again with one stat per request."""

    def __init__(self, directory: Path, *, max_age: int) -> None:
        self._directory = directory
        self._max_age = max_age
        self._files: dict[str, CrlFile] = {}

    def get(self, name: str) -> CrlFile | None:
        """The CRL a URL's last segment names, or None (then 404)."""
        found = file_for(name)
        if found is None:
            return None
        try:
            st = os.stat(self._directory / found)
        except (FileNotFoundError, NotADirectoryError):
            self._files.pop(found, None)
            return None
        version = (st.st_ino, st.st_size, st.st_mtime_ns)
        cached = self._files.get(found)
        if cached is not None and cached.version == version:
            return cached
        try:
            with open(self._directory / found, "rb") as fh:
                st = os.fstat(fh.fileno())
                body = fh.read()
        except FileNotFoundError:
            return None
        tag = etag(st)
        lines = b"".join(
            b"%s: %s\r\n" % (name.title(), value)
            for name, value in response_headers(st, max_age=self._max_age)
            if name != b"content-type"
        )
        entry = CrlFile(
            body=body,
            etag=tag,
            mtime=int(st.st_mtime),
            headers=lines,
            version=(st.st_ino, st.st_size, st.st_mtime_ns),
        )
        self._files[found] = entry
        return entry
