"""A responder host keeps its own copy of the status (LMDB beside its config): killed
and started again while its Redis is down, it answers "good" and "revoked" at once from
that copy; with its Redis back it catches up from the change log (no whole load) with
a revocation made meanwhile; a second host, sharing nothing with it (its own replica,
its own copy), answers the same. Real Redis, real `hanko serve`, openssl as client."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import DevCA, client, free_port, paying_org, serving
from tests.ocsp.status.test_redis_mirror import HOSTS, Responder, until
from tests.ocsp.test_answers import issue
from tests.redis_server import RedisServer


def revoke(rpc: httpx.Client, serial: int) -> None:
    r = rpc.post(f"/v1/certificates/{serial:x}/revoke", json={"reason": "superseded"})
    assert r.status_code == 200, r.text


def gone(base: str) -> bool:
    try:
        httpx.get(f"{base}/readyz", timeout=1)
    except httpx.TransportError:
        return True
    return False


@pytest.mark.slow
def test_a_restarted_host_answers_from_its_copy_then_catches_up(
    fresh_ca: DevCA, tmp_path: Path
) -> None:
    primary = RedisServer(tmp_path / "primary")
    replicas = [RedisServer(tmp_path / f"replica{i}", replica_of=primary) for i in range(2)]
    files = tmp_path / "files"
    files.mkdir()
    issuing = fresh_ca.directory / "ca" / "issuing.pem"
    (files / "issuing.pem").write_bytes(issuing.read_bytes())
    (files / "chain.pem").write_bytes(
        (fresh_ca.directory / "ca" / "root.pem").read_bytes() + issuing.read_bytes()
    )
    port = free_port()
    hosts: list[Responder] = []
    try:
        with serving(fresh_ca, f'\n[replication]\nredis = "{primary.url}"\n') as (base, ca, _):
            admin = client(base, ca, "admin")
            paying_org(admin, "acme")
            rpc = client(base, ca, "rpc", "acme")
            kept, revoked_early, revoked_late = (
                issue(rpc, f"{n}.example.co.jp") for n in ("kept", "early", "late")
            )
            revoke(rpc, revoked_early.serial_number)
            hosts = [Responder(tmp_path, h, port, r) for h, r in zip(HOSTS, replicas, strict=True)]
            one, two = hosts
            for h in hosts:
                until(lambda h=h: h.status(revoked_early, files) == "revoked", 10, "revoked")
                until(lambda h=h: h.ready()[0] == 200, 10, f"ready on {h.base}")
            copy = tmp_path / f"responder-{HOSTS[0]}.status"
            assert (copy / "data.mdb").is_file()
            assert copy.stat().st_mode & 0o777 == 0o700

            # Host one dies with its Redis; a revocation is made meanwhile.
            one.proc.kill()
            one.proc.wait()
            replicas[0].kill()
            until(lambda: gone(one.base), 10, "host one's responders gone")
            revoke(rpc, revoked_late.serial_number)

            # Started again with Redis still down: it answers at once from its copy.
            started = time.monotonic()
            one = hosts[0] = Responder(tmp_path, HOSTS[0], port, replicas[0])
            assert one.status(kept, files) == "good"
            assert one.status(revoked_early, files) == "revoked"
            answered = time.monotonic() - started
            assert answered < 10, f"{answered:.1f} s to answer after a restart"
            assert one.status(revoked_late, files) == "good"  # not known here yet
            until(lambda: one.ready()[0] == 503, 15, "not ready while its Redis is down")
            _, body = one.ready()
            assert body["redis"] == "down", body

            # Its Redis back: caught up from the change log, not by a whole load.
            replicas[0].start()
            until(lambda: one.status(revoked_late, files) == "revoked", 15, "caught up")
            until(lambda: one.ready()[0] == 200, 10, "ready again")
            assert one.status(kept, files) == "good"
            assert "copier: loaded" in two.log.read_text()  # its first start did
            assert "copier: loaded" not in one.log.read_text(), one.log.read_text()

            # The host that shares nothing with it answers the same.
            for cert, status in ((kept, "good"), (revoked_early, "revoked"),
                                 (revoked_late, "revoked")):  # fmt: skip
                assert two.status(cert, files) == status
                assert one.status(cert, files) == status
    finally:
        for h in hosts:
            h.close()
        for server in (*replicas, primary):
            server.close()
