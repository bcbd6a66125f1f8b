"""A CRL file written while it is read (crl/streaming.py): the digest is of exactly the
parts added, the header lands in the bytes reserved for it, nothing is visible under
the name before finish(), and an abandoned file leaves nothing behind."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from crl.streaming import StreamedFile


def test_parts_are_hashed_and_written_behind_the_reserved_header(tmp_path: Path) -> None:
    path = tmp_path / "crl" / "0.crl"
    out = StreamedFile(path, 4, "sha256")
    parts = [os.urandom(n) for n in (1, 70_000, 3, 300_000)] * 5
    for part in parts:
        out.add(part)
    assert out.digest() == hashlib.sha256(b"".join(parts)).digest()
    assert not path.exists()
    with pytest.raises(ValueError, match="reserved"):
        out.finish(b"xyz", b"", 1_700_000_000)
    out.finish(b"HEAD", b"TAIL", 1_700_000_000)
    assert path.read_bytes() == b"HEAD" + b"".join(parts) + b"TAIL"
    assert int(path.stat().st_mtime) == 1_700_000_000
    assert path.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in path.parent.iterdir()] == ["0.crl"]


def test_an_abandoned_file_leaves_nothing(tmp_path: Path) -> None:
    (tmp_path / "0.crl").write_bytes(b"the published one")
    out = StreamedFile(tmp_path / "0.crl", 2, "sha256")
    out.add(b"half")
    out.abort()
    assert [p.name for p in tmp_path.iterdir()] == ["0.crl"]
    assert (tmp_path / "0.crl").read_bytes() == b"the published one"
