"""What a responder process asks of the OS: its listening socket (shared by every
responder on the port), its open-file limit, and the stats line it reports."""

from __future__ import annotations

import contextlib
import os
import resource
import socket

import msgspec

# Descriptors a responder keeps for itself beyond its connections: the LMDB files, the
# listening socket, its pipes, the event loop's own.
FD_RESERVE = 64


def report(counts: dict[str, int]) -> None:
    """One stats line to `hanko serve` (stdout is a pipe it reads). Never blocks: a
    line the pipe has no room for is dropped, the next one carries the totals."""
    with contextlib.suppress(BlockingIOError, BrokenPipeError):
        os.write(1, b"stats " + msgspec.json.encode(counts) + b"\n")


def listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(4096)
    sock.setblocking(False)
    return sock


def raise_open_files() -> int:
    """Raise the soft open-file limit to the hard one (a responder holds a descriptor per
    client); the connections that fit under it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    return max(1, soft - FD_RESERVE) if soft != resource.RLIM_INFINITY else 1 << 30
