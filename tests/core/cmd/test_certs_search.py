"""`hanko certs search` as a user runs it, on a CA of each back end holding the same few
thousand certificates (tests/search_data.py); the incident queries of
docs/operations.md, run as plain SQL against the real database, return the serials the
command returns; the admin API pages through the same answers."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import psycopg
import pytest

from core.store.configured import open_store
from tests import search_data as data
from tests.conftest import DevCA, anonymous, hanko, init_ca, keyed, new_key, serving, token
from tests.pg_server import PostgresServer
from tests.stores import PgDatabase, new_database

ROOT = Path(__file__).resolve().parents[3]
_BLOCK = re.compile(r"<!-- search: (.*?) -->\n```sql\n(.*?)```", re.DOTALL)
_SQL = re.compile(r"```sql\n(.*?)```", re.DOTALL)


def doc_queries() -> list[tuple[list[str], str]]:
    """(the `hanko certs search` arguments, the SQL) of each marked query in the docs."""
    text = (ROOT / "docs" / "operations.md").read_text()
    return [(shlex.split(args), sql) for args, sql in _BLOCK.findall(text)]


def filled(ca: DevCA) -> DevCA:
    with open_store(ca.config) as store:
        data.fill(store)
    return ca


@pytest.fixture(scope="module")
def pg(
    postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> tuple[DevCA, PgDatabase]:
    database = new_database(postgres, migrate=False)
    return filled(init_ca(tmp_path_factory.mktemp("search-pg") / "ca", store=database)), database


@pytest.fixture(scope="module")
def lmdb(tmp_path_factory: pytest.TempPathFactory) -> DevCA:
    return filled(init_ca(tmp_path_factory.mktemp("search-lmdb") / "ca"))


def search(ca: DevCA, *args: str) -> list[str]:
    run = hanko("certs", "search", "-c", str(ca.config_path), "--json", "--limit", "100000", *args)
    assert run.returncode == 0, run.stderr
    page = json.loads(run.stdout)
    assert page["next"] is None
    return [c["serial"] for c in page["certificates"]]


def test_the_docs_have_incident_queries() -> None:
    assert len(doc_queries()) >= 4


@pytest.mark.parametrize("n", range(5))
def test_doc_sql_returns_what_the_command_returns(
    n: int, pg: tuple[DevCA, PgDatabase], lmdb: DevCA
) -> None:
    queries = doc_queries()
    if n >= len(queries):
        pytest.fail("fewer marked queries in docs/operations.md than this test runs")
    args, sql = queries[n]
    ca, database = pg
    with psycopg.connect(database.dsn, password=database.password) as conn:
        from_sql = [str(row[0]) for row in conn.execute(sql.encode()).fetchall()]
    assert from_sql, f"the documented query finds nothing in the test data: {args}"
    assert search(ca, *args) == from_sql
    # The same command on LMDB, holding the same certificates.
    assert search(lmdb, *args) == from_sql


def test_every_documented_query_runs(pg: tuple[DevCA, PgDatabase]) -> None:
    _, database = pg
    text = (ROOT / "docs" / "operations.md").read_text()
    start = text.index("## Incident queries")
    blocks = _SQL.findall(text[start : text.index("\n## ", start + 10)])
    assert len(blocks) >= 6
    with psycopg.connect(database.dsn, password=database.password) as conn:
        for block in blocks:
            for statement in filter(str.strip, block.split(";\n")):
                if statement.strip().startswith("--") and "SELECT" not in statement:
                    continue
                conn.execute(statement.encode()).fetchall()


def test_bad_arguments_are_one_line(lmdb: DevCA) -> None:
    for args, message in (
        (["--issued-after", "yesterday"], "must be an ISO 8601 date"),
        (["--issuer", "nobody"], "neither a configured issuer"),
        (["--name", "a b"], "name must be"),
        (["--limit", "0"], "limit must be"),
    ):
        run = hanko("certs", "search", "-c", str(lmdb.config_path), *args)
        assert run.returncode != 0
        assert message in run.stderr
        assert "Traceback" not in run.stderr
        assert len(run.stderr.strip().splitlines()) == 1


def test_issuer_by_its_configured_name(lmdb: DevCA) -> None:
    # The CA's own issuer: none of the test certificates name it.
    assert search(lmdb, "--issuer", lmdb.config.issuers()[0].name) == []


@pytest.mark.parametrize("backend", ["lmdb", "postgresql"])
def test_admin_api_pages_through_a_search(
    backend: str, pg: tuple[DevCA, PgDatabase], lmdb: DevCA
) -> None:
    ca = pg[0] if backend == "postgresql" else lmdb
    want = search(ca, "--profile", "ev", "--status", "revoked")
    with serving(ca) as (base, _, _), keyed(base, ca, token(ca, "admin")) as admin:
        got: list[str] = []
        after = ""
        for _ in range(50):
            params: dict[str, Any] = {"profile": "ev", "status": "revoked", "limit": 40}
            if after:
                params["after"] = after
            r = admin.get("/v1/admin/certificates", params=params)
            assert r.status_code == 200, r.text
            body = r.json()
            got += [c["serial"] for c in body["certificates"]]
            if body["next"] is None:
                break
            after = body["next"]
        assert got == want
        first = admin.get("/v1/admin/certificates", params={"name": "host18.example.co.jp"}).json()
        [hit] = first["certificates"]
        assert hit["not_before"].endswith("Z")
        assert hit["status"] == "revoked"
        for params, code in (
            ({"colour": "red"}, "invalid_query"),
            ({"limit": "5000"}, "invalid_query"),
            ({"status": "bad"}, "invalid_query"),
            ({"issued_after": "soon"}, "invalid_query"),
        ):
            r = admin.get("/v1/admin/certificates", params=params)
            assert r.status_code == 400, r.text
            assert r.json()["error"] == code
        # Only admin keys search every account's certificates.
        with anonymous(base, ca) as anon:
            assert anon.get("/v1/admin/certificates").status_code == 401
        admin.post("/v1/admin/accounts", json={"id": "acct2", "name": "Acct 2 K.K."})
        reader = new_key(base, ca, "reader", "acct2")["secret"]
        with keyed(base, ca, reader) as client:
            assert client.get("/v1/admin/certificates").status_code == 403
