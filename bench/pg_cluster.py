"""A throwaway PostgreSQL cluster (the tests' and the benchmarks'): `initdb` into a
temporary folder, `pg_ctl` on a loopback port, password (SCRAM) authentication over TCP
only. It can be killed
(-9), started again, and given a streaming standby (`pg_basebackup`) that can be made
synchronous and promoted.

PostgreSQL refuses to run as root: as root, the cluster belongs to the `postgres` user
the Debian package creates, and its programs run under `runuser`.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

SUPERUSER = "postgres"
ADMIN_ROLE = "hanko_admin"  # owns the tables, runs migrations
RUNTIME_ROLE = "hanko"  # what hanko serves with


class NotInstalled(RuntimeError):
    pass


def bindir() -> Path:
    """The PostgreSQL programs (Debian keeps them off PATH, per major version)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).resolve().parent
    raise NotInstalled("PostgreSQL is not installed: run scripts/dev.sh setup")


def _as_owner() -> list[str]:
    return ["runuser", "-u", SUPERUSER, "--"] if os.geteuid() == 0 else []


def _children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (the postmaster's backends), from /proc."""
    found = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            fields = Path(stat).read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(Path(stat).parent.name))
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    def __init__(
        self,
        *,
        port: int | None = None,
        standby_of: PostgresServer | None = None,
        name: str = "primary",
        settings: dict[str, str] | None = None,
    ) -> None:
        self.bin = bindir()
        self.name = name
        self.port = port or _free_port()
        self.password = os.urandom(12).hex()
        self.base = Path(tempfile.mkdtemp(prefix=f"hanko-pg-{name}-"))
        self.data = self.base / "data"
        self.log = self.base / "server.log"
        self._chown(self.base)
        if standby_of is None:
            self._initdb()
        else:
            self.password = standby_of.password
            self._basebackup(standby_of)
            # The primary's settings came along: a promoted standby waits for nobody.
            settings = {"synchronous_standby_names": "''", **(settings or {})}
        self._configure(settings or {})
        self.start()

    # -- setup ---------------------------------------------------------------------

    def _chown(self, path: Path) -> None:
        if os.geteuid() == 0:
            shutil.chown(path, SUPERUSER, SUPERUSER)
        path.chmod(0o700)

    def _run(self, *argv: str, env: dict[str, str] | None = None, timeout: float = 120) -> None:
        proc = subprocess.run(
            [*_as_owner(), *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **(env or {})},
            cwd="/",
            check=False,
        )
        if proc.returncode != 0:
            raise AssertionError(f"{argv[0]} failed: {proc.stdout}{proc.stderr}")

    def _initdb(self) -> None:
        pwfile = self.base / "pw"
        pwfile.write_text(self.password + "\n")
        if os.geteuid() == 0:
            shutil.chown(pwfile, SUPERUSER, SUPERUSER)
        pwfile.chmod(0o600)
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-U",
            SUPERUSER,
            f"--pwfile={pwfile}",
            "--auth-local=peer",
            "--auth-host=scram-sha-256",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
        )
        pwfile.unlink()

    def _basebackup(self, primary: PostgresServer) -> None:
        self._run(
            str(self.bin / "pg_basebackup"),
            "-h",
            "127.0.0.1",
            "-p",
            str(primary.port),
            "-U",
            SUPERUSER,
            "-D",
            str(self.data),
            "-X",
            "stream",
            "-R",
            "--no-sync",
            env={"PGPASSWORD": primary.password},
        )
        # Name this standby in its connection, so the primary can wait for it by name.
        auto = self.data / "postgresql.auto.conf"
        text = auto.read_text()
        auto.write_text(
            text.replace(
                "primary_conninfo = '", f"primary_conninfo = 'application_name={self.name} "
            )
        )

    def _configure(self, settings: dict[str, str]) -> None:
        conf = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            # The socket folder is the cluster's own: nothing but its owner reaches it.
            "unix_socket_directories": f"'{self.base}'",
            "max_connections": "100",
            "shared_buffers": "128MB",
            "wal_level": "replica",
            "max_wal_senders": "5",
            "hot_standby": "on",
            "logging_collector": "off",
            **settings,
        }
        with (self.data / "postgresql.conf").open("a") as f:
            for key, value in conf.items():
                f.write(f"{key} = {value}\n")

    # -- running -------------------------------------------------------------------

    def start(self) -> None:
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self) -> None:
        with contextlib.suppress(AssertionError):
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def pid(self) -> int | None:
        pidfile = self.data / "postmaster.pid"
        try:
            return int(pidfile.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def kill(self) -> None:
        """kill -9 of the postmaster and every backend (a crash: nothing flushed after)."""
        pid = self.pid()
        if pid is None:
            return
        for p in [pid, *_children(pid)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)

    def promote(self) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-w", "promote")

    def close(self) -> None:
        self.stop()
        self.kill()
        shutil.rmtree(self.base, ignore_errors=True)

    # -- connecting ----------------------------------------------------------------

    def dsn(self, user: str = SUPERUSER, dbname: str = "postgres") -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/{dbname}"

    def connect(self, dbname: str = "postgres", **kwargs: Any) -> psycopg.Connection[Any]:
        return psycopg.connect(
            self.dsn(dbname=dbname),
            password=self.password,
            autocommit=True,
            connect_timeout=5,
            **kwargs,
        )

    def sql(self, statement: str, dbname: str = "postgres") -> list[tuple[Any, ...]]:
        with self.connect(dbname) as conn:
            cur = conn.execute(statement.encode())
            return cur.fetchall() if cur.description else []

    def create_roles(self) -> str:
        """The two roles hanko's tests use (once per cluster); returns their password."""
        with self.connect() as conn:
            for role in (ADMIN_ROLE, RUNTIME_ROLE):
                exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
                if exists.fetchone() is None:
                    conn.execute(
                        sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                            sql.Identifier(role), sql.Literal(self.password)
                        )
                    )
        return self.password

    def create_database(self, name: str) -> None:
        """An empty database owned by the admin role, the runtime role let in."""
        self.create_roles()
        with self.connect() as conn:
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(name), sql.Identifier(ADMIN_ROLE)
                )
            )
        with self.connect(name) as conn:
            conn.execute(
                sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(sql.Identifier(name))
            )
            conn.execute(
                sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                    sql.Identifier(name), sql.Identifier(RUNTIME_ROLE)
                )
            )
