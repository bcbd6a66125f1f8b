"""pytest-benchmark's `pedantic`, typed: the one place its missing annotations show."""

from __future__ import annotations

from collections.abc import Callable

from pytest_benchmark.fixture import BenchmarkFixture


def pedantic(
    benchmark: BenchmarkFixture,
    target: Callable[[], object],
    *,
    rounds: int,
    iterations: int = 1,
    warmup_rounds: int = 0,
) -> None:
    benchmark.pedantic(  # type: ignore[no-untyped-call]  # pytest-benchmark ships no annotations
        target, rounds=rounds, iterations=iterations, warmup_rounds=warmup_rounds
    )
