"""`hanko serve` that cannot start says why in one line and exits 1: a port in use, a
missing secret, a wrong HSM PIN. Never a traceback."""

from __future__ import annotations

import socket
import subprocess

import pytest

from tests.conftest import BIN, DevCA, free_ports
from tests.stores import PgDatabase


def serve(ca: DevCA) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "hanko"), "serve", "-c", str(ca.config_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("hanko: error:")]
    assert len(errors) == 1, result.stderr
    assert result.stderr.strip().splitlines() == errors, result.stderr  # nothing else
    return errors[0]


def ports(ca: DevCA) -> tuple[int, int, int]:
    api, status, metrics = free_ports(3)
    text = ca.config_path.read_text()
    text = text.replace("127.0.0.1:8443", f"127.0.0.1:{api}")
    text = text.replace("127.0.0.1:8080", f"127.0.0.1:{status}")
    text = text.replace("127.0.0.1:9464", f"127.0.0.1:{metrics}")
    ca.config_path.write_text(text)
    return api, status, metrics


@pytest.mark.parametrize("which", ["api", "metrics"])
def test_a_port_in_use(fresh_ca: DevCA, which: str) -> None:
    api, _, metrics = ports(fresh_ca)
    port = api if which == "api" else metrics
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        line = one_line(serve(fresh_ca))
    assert f"{which}.listen: cannot listen on 127.0.0.1:{port}: Address already in use" in line


def test_a_missing_admin_token(fresh_ca: DevCA) -> None:
    ports(fresh_ca)
    (fresh_ca.directory / "secrets" / "admin.token").unlink()
    line = one_line(serve(fresh_ca))
    assert "api.admin_token" in line
    assert "does not exist" in line


def test_a_wrong_pin(fresh_ca: DevCA) -> None:
    ports(fresh_ca)
    pin = fresh_ca.directory / "secrets" / "hsm.pin"
    pin.write_text("000000\n")
    line = one_line(serve(fresh_ca))
    assert "wrong PIN" in line


def test_a_postgresql_store_that_cannot_be_reached_or_used(
    fresh_ca: DevCA, pg_database: PgDatabase
) -> None:
    ports(fresh_ca)
    secret = fresh_ca.directory / "secrets" / "store.password"
    secret.write_text("wrong-password")
    secret.chmod(0o600)
    text = fresh_ca.config_path.read_text()
    lmdb_table = text[text.index("[store]") : text.index("[hsm]")]

    def store(dsn: str) -> None:
        table = (
            f'[store]\nbackend = "postgresql"\ndsn = "{dsn}"\n'
            'password = { file = "secrets/store.password" }\nconnect_timeout = "2s"\n\n'
        )
        fresh_ca.config_path.write_text(text.replace(lmdb_table, table))

    (closed,) = free_ports(1)
    store(f"postgresql://hanko@127.0.0.1:{closed}/hanko")
    line = one_line(serve(fresh_ca))
    assert f"cannot connect to the PostgreSQL store hanko on 127.0.0.1:{closed}" in line
    store(pg_database.dsn)
    line = one_line(serve(fresh_ca))
    assert "password authentication failed" in line
    assert "wrong-password" not in line
    # The right password, but a database nobody migrated.
    secret.write_text(pg_database.password)
    with pg_database.admin() as conn:
        conn.execute("DROP TABLE hanko_migrations")
    line = one_line(serve(fresh_ca))
    assert "has no hanko schema: run `hanko store migrate`" in line
