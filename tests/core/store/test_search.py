"""Certificate search on both back ends against a store of a few thousand certificates
with known answers (tests/search_data.py): every filter, a wildcard name pattern, a
date window, combinations, paging, and malformed queries."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.base.errors import ClientError
from core.store import LmdbStore
from core.store.search import CertQuery, parse_time
from tests import search_data as data
from tests.search_data import CERTS, NOW, serials
from tests.stores import BACKENDS, new_database


@pytest.fixture(scope="module", params=BACKENDS)
def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    if request.param == "lmdb":
        opened: Any = LmdbStore(
            tmp_path_factory.mktemp("search") / "lmdb", create=True, map_size=1 << 30
        )
    else:
        opened = new_database(request.getfixturevalue("postgres")).open()
    data.fill(opened)
    yield opened
    opened.close()


def found(store: Any, **query: Any) -> list[str]:
    """Every serial the query finds, page after page."""
    out: list[str] = []
    after = None
    for _ in range(100):
        page = store.search_certs(
            CertQuery(limit=query.pop("limit", 400), after=after, **query), NOW
        )
        out.extend(c.serial for c in page.certificates)
        if page.next is None:
            return out
        after = page.next
    raise AssertionError("paging did not end")


def test_no_filter_finds_everything_in_serial_order(store: Any) -> None:
    assert found(store) == serials(CERTS)


@pytest.mark.parametrize(
    ("query", "want"),
    [
        ({"organization": "org3"}, lambda c: c.organization == "org3"),
        # A precertificate alone is nobody's certificate yet.
        ({"account": "acct2"}, lambda c: c.account == "acct2" and not c.precertificate_only),
        ({"profile": "ev"}, lambda c: c.profile == "ev"),
        ({"issuer": data.ISSUER_B}, lambda c: c.issuer == data.ISSUER_B),
        ({"status": "revoked"}, lambda c: c.revoked),
        ({"status": "expired"}, lambda c: not c.revoked and c.not_after <= NOW),
        ({"status": "good"}, lambda c: not c.revoked and c.not_after > NOW),
        ({"key_type": "ecdsa-p384"}, lambda c: c.key_type == "ecdsa-p384"),
        ({"key_type": "rsa-2048"}, lambda c: c.key_type == "rsa-2048"),
        ({"name": "host1234.example.co.jp"}, lambda c: c.i == 1234),
        ({"name": "WWW7.other.jp"}, lambda c: c.i % 10 == 7),
        ({"name": "example.co.jp"}, lambda c: c.i % 17 == 0),
        # The wildcard certificates' own name, exactly.
        ({"name": "*.example.co.jp"}, lambda c: True),
        ({"name": "host12*.example.co.jp"}, lambda c: str(c.i).startswith("12")),
        ({"name": "www3*"}, lambda c: c.i % 10 == 3),
        ({"name": "nothing.example"}, lambda c: False),
    ],
)
def test_each_filter(store: Any, query: dict[str, Any], want: Any) -> None:
    expected = serials(c for c in CERTS if want(c))
    assert found(store, **query) == expected


def test_wildcard_pattern_matches_names_below_and_the_wildcard_itself(store: Any) -> None:
    # "*" in a pattern is any run: host names under example.co.jp and the literal
    # "*.example.co.jp" alike, but not the bare domain.
    got = store.search_certs(CertQuery(name="*.example.co.jp", limit=5), NOW).certificates
    assert all(any(n.endswith(".example.co.jp") for n in c.names) for c in got)
    assert found(store, name="*3.other.jp") == serials(c for c in CERTS if c.i % 10 == 3)
    assert found(store, name="host1*9.example.co.jp") == serials(
        c for c in CERTS if str(c.i).startswith("1") and str(c.i).endswith("9")
    )


def test_date_window(store: Any) -> None:
    after, before = parse_time("2026-10-01", "after"), parse_time("2026-10-03T12:00:00Z", "before")
    expected = serials(c for c in CERTS if after <= c.not_before < before)
    assert len(expected) == 60
    assert found(store, issued_after=after, issued_before=before) == expected
    # Times in another zone mean the same instants.
    jst = parse_time("2026-10-01T09:00:00+09:00", "after")
    assert jst == after


def test_combination(store: Any) -> None:
    after = parse_time("2026-10-15", "after")
    expected = serials(
        c
        for c in CERTS
        if c.profile == "ev"
        and c.organization == "org2"
        and c.not_before >= after
        and c.status == "revoked"
        and any(n.startswith("www") and n.endswith(".other.jp") for n in c.names)
        and c.key_type == "ecdsa-p256"
    )
    assert expected, "the combination must find something to be a test"
    got = found(
        store,
        profile="ev",
        organization="org2",
        issued_after=after,
        status="revoked",
        name="www*.other.jp",
        key_type="ecdsa-p256",
    )
    assert got == expected


def test_paging_gives_each_certificate_once(store: Any) -> None:
    pages = []
    after = None
    while True:
        page = store.search_certs(CertQuery(profile="ov", limit=250, after=after), NOW)
        pages.append([c.serial for c in page.certificates])
        if page.next is None:
            break
        after = page.next
    flat = [s for p in pages for s in p]
    assert flat == serials(c for c in CERTS if c.profile == "ov")
    assert len(pages) > 5


def test_a_hit_carries_what_an_incident_report_needs(store: Any) -> None:
    c = CERTS[18]  # ev, revoked, example.co.jp among its names
    [hit] = store.search_certs(CertQuery(name=f"host{c.i}.example.co.jp"), NOW).certificates
    assert hit.serial == c.serial.hex()
    assert (hit.status, hit.profile, hit.organization) == ("revoked", "ev", c.organization)
    assert (hit.issuer, hit.key_type) == (c.issuer.hex(), c.key_type)
    assert (hit.not_before, hit.not_after) == (c.not_before, c.not_after)
    assert (hit.revoked_at, hit.reason) == (c.not_before + 3600, 1)
    assert hit.names == list(c.names)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"name": "bad name!"}, "name must be"),
        ({"limit": 0}, "limit must be"),
        ({"after": "zz"}, "after must be a serial"),
        ({"issued_after": 10, "issued_before": 5}, "earlier than"),
    ],
)
def test_malformed_queries_are_client_errors(
    store: Any, query: dict[str, Any], message: str
) -> None:
    with pytest.raises(ClientError, match=message):
        store.search_certs(CertQuery(**query), NOW)


def test_lmdb_store_path_is_untouched_by_search(tmp_path: Path) -> None:
    # A search is a read: an LMDB store opened read-only answers it.
    path = tmp_path / "lmdb"
    LmdbStore(path, create=True, map_size=1 << 26).close()
    with LmdbStore(path, readonly=True) as ro:
        assert ro.search_certs(CertQuery(), NOW).certificates == []
