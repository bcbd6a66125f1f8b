"""A real redis-server for the tests, on loopback, in a folder of its own, with no
persistence unless asked; it can be killed and started again on the same port."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import redis


class RedisServer:
    def __init__(
        self,
        directory: Path,
        *,
        port: int | None = None,
        host: str = "127.0.0.1",
        replica_of: RedisServer | None = None,
    ) -> None:
        """`replica_of`: a read-only replica of that server (`replicaof`), as on a
        responder host."""
        if shutil.which("redis-server") is None:
            pytest.fail(
                "redis-server is not installed: run scripts/dev.sh setup (the test command does)"
            )
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.host = host
        if port is None:
            with socket.socket() as s:
                s.bind((host, 0))
                port = int(s.getsockname()[1])
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None
        self.replica_of = replica_of
        self.start()

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def start(self, *extra: str) -> None:
        if self.replica_of is not None:
            extra = ("--replicaof", self.replica_of.host, str(self.replica_of.port),
                     "--replica-read-only", "yes", *extra)  # fmt: skip
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", self.host, "--save", "",
             "--appendonly", "no", "--dir", str(self.directory), *extra],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while True:
            try:
                if self.client().ping():
                    return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def client(self) -> redis.Redis:
        return redis.Redis(host=self.host, port=self.port, socket_timeout=5)

    def follow(self, primary: RedisServer | None) -> None:
        """Replicate `primary` from now on; None: a port nobody listens on (the link is
        down, as when the network to the primary is)."""
        if primary is None:
            with socket.socket() as s:
                s.bind((self.host, 0))
                dead = int(s.getsockname()[1])
            self.client().replicaof(self.host, dead)
        else:
            self.client().replicaof(primary.host, primary.port)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def close(self) -> None:
        self.kill()
