"""A store that goes away under `hanko serve` (its PostgreSQL stopped): every write is
503 with Retry-After, whose words name no host, port, path or class of the service's
insides (they go to the log), and ACME answers serverInternal, never malformed."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from acme import messages

from tests.conftest import DevCA, Service, client, csr, init_ca, keyed, new_key, paying_org, serving
from tests.core.api.test_acme import Acme, make_eab
from tests.pg_server import PostgresServer
from tests.stores import new_database

pytestmark = pytest.mark.slow


@pytest.fixture
def on_postgresql(tmp_path: Path) -> Iterator[tuple[Service, PostgresServer]]:
    server = PostgresServer()  # a cluster of this test's own: it is stopped mid-test
    try:
        ca: DevCA = init_ca(tmp_path / "ca", store=new_database(server, migrate=False))
        with serving(ca) as running:
            yield running, server
    finally:
        server.close()


def test_an_unreachable_store_is_503_naming_nothing_inside(
    on_postgresql: tuple[Service, PostgresServer],
) -> None:
    (base, ca, _), server = on_postgresql
    admin = client(base, ca, "admin")
    paying_org(admin, "acme")
    rpc = keyed(base, ca, new_key(base, ca, "issuer", "acme")["secret"])
    acme = Acme(base, ca)
    acme.register(make_eab(base, ca))
    request = {"csr": csr("www.example.co.jp"), "profile": "ov", "organization": "acme"}
    assert rpc.post("/v1/certificates", json=request).status_code == 201

    server.stop()
    r = rpc.post("/v1/certificates", json=request)
    assert r.status_code == 503, r.text
    assert r.headers["retry-after"].isdigit()
    text = r.text
    for inside in (str(server.port), "127.0.0.1", "localhost", str(server.base), "psycopg",
                   "Error", "Traceback", "/"):  # fmt: skip
        assert inside not in text, (inside, text)
    assert re.fullmatch(r"[a-z_]+", r.json()["error"])
    with pytest.raises(messages.Error) as refused:
        acme.client.new_order(csr("other.example.co.jp").encode())
    assert refused.value.typ == "urn:ietf:params:acme:error:serverInternal"
    assert str(server.port) not in str(refused.value.detail)
