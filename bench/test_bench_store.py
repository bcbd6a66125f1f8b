"""pytest-benchmark micro benchmarks of the store's commit path.

    .venv/bin/python -m pytest bench/test_bench_store.py

`commit_one` is one durable commit holding one revocation; `commit_group_256` is one
durable commit holding 256. Their per-revocation ratio is what group commit buys.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from bench.fixture import pedantic
from bench.store_commit import _revoke, _seed
from core.store import Failed, LmdbStore, Store


@pytest.fixture
def seeded(tmp_path: Path) -> Iterator[tuple[Store, Iterator[bytes]]]:
    store = LmdbStore(tmp_path / "lmdb", create=True, map_size=2 << 30)
    serials = iter(_seed(store, 200_000))
    yield store, serials
    store.close()


def test_commit_one(benchmark: BenchmarkFixture, seeded: tuple[Store, Iterator[bytes]]) -> None:
    store, serials = seeded
    pedantic(benchmark, lambda: store.write(_revoke(next(serials))), rounds=300, iterations=1)


def test_commit_group_256(
    benchmark: BenchmarkFixture, seeded: tuple[Store, Iterator[bytes]]
) -> None:
    store, serials = seeded

    def group() -> None:
        results = store.commit_group([_revoke(s) for s in itertools.islice(serials, 256)])
        assert not any(isinstance(r, Failed) for r in results)

    pedantic(benchmark, group, rounds=100, iterations=1)
