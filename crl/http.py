"""CRL files over HTTP, for CDNs: conditional GETs answered with 304, bodies streamed.

Pure parts (which file a path names, the validators, whether a request is answered by
304) are functions; `CrlFiles` is the edge that opens files and streams them through
the core's ASGI app. A download holds one chunk in memory: the file is read 64 KiB at a
time and the next read waits until the client has taken the previous chunk, so memory
does not grow with the number or the slowness of concurrent downloads. An open file
keeps its content while a rebuild renames a new CRL over the name.
"""

from __future__ import annotations

import email.utils
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from core.base.httpdate import http_date

_NAME = re.compile(r"^(0|[1-9][0-9]{0,4})(-delta)?\.crl$")
CHUNK = 64 << 10


def file_for(name: str) -> str | None:
    """The published file a URL's last segment names, or None (then 404)."""
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


class CrlFiles:
    """Serves GET and HEAD for `/crl/<partition>.crl` and `/crl/<partition>-delta.crl`
    from the publish directory."""

    def __init__(self, directory: Path, *, max_age: int) -> None:
        self._directory = directory
        self._max_age = max_age

    async def __call__(self, scope: Mapping[str, Any], send: Any, name: str) -> bool:
        """Answer the request; False if there is no such CRL (the caller sends 404)."""
        found = file_for(name)
        if found is None:
            return False
        try:
            fd = os.open(self._directory / found, os.O_RDONLY)
        except FileNotFoundError:
            return False
        try:
            st = os.fstat(fd)
            headers = response_headers(st, max_age=self._max_age)
            request = {k: v for k, v in scope["headers"]}
            if not_modified(request, etag(st), int(st.st_mtime)):
                await send({"type": "http.response.start", "status": 304, "headers": headers})
                await send({"type": "http.response.body", "body": b""})
                return True
            headers.append((b"content-length", str(st.st_size).encode()))
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            if scope["method"] == "HEAD":
                await send({"type": "http.response.body", "body": b""})
                return True
            offset = 0
            while offset < st.st_size:
                # A page-cache read of 64 KiB takes microseconds: not worth a thread.
                chunk = os.pread(fd, min(CHUNK, st.st_size - offset), offset)
                if not chunk:
                    break  # cannot happen: renames never truncate an open file
                offset += len(chunk)
                await send(
                    {"type": "http.response.body", "body": chunk, "more_body": offset < st.st_size}
                )
            return True
        finally:
            os.close(fd)


def url_list(issuer_subject: str, key_id: bytes, urls: Sequence[str]) -> dict[str, Any]:
    """The disclosure CCADB asks for: a JSON array of every partition's full CRL URL."""
    return {"issuer": issuer_subject, "issuer_key_id": key_id.hex(), "crl_urls": list(urls)}
