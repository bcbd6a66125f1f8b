"""pytest-benchmark micro benchmarks of one responder process's request path.

    .venv/bin/python -m pytest bench/test_bench_responder.py

A development CA (`hanko init`, SoftHSM) and a store of CERTS certificates with their
responses signed (the same loader and refresher as `hanko bench ocsp`), then
`ResponderState.handle` for DISTINCT cached GET requests in turn, TICKS ticks of
PER_TICK requests each: about what one of two processes answers at 60,000 requests/s.
`revalidate_every_tick` forces what the responder once did, a lookup of
each cached answer's stored bytes at its first request after every 100 ms tick;
`revalidate_every_second` is what it does now while no status changes. Their ratio is
what the change buys on the request path.
"""

from __future__ import annotations

import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
from cryptography import x509
from pytest_benchmark.fixture import BenchmarkFixture

from bench.fixture import pedantic
from bench.ocsp_load import _hanko_get, _refresh_all, _requests, load_store
from core.ca.issuer import issuer_info
from core.cmd.wiring import responder_settings
from core.config import load_config
from core.store import LmdbStore
from ocsp.status.connection import Request
from ocsp.status.server import ResponderState
from ocsp.status.sources import lmdb_source
from signer.algorithms import KeyType

CERTS = 200_000
DISTINCT = 10_000
TICKS = 30
PER_TICK = 3_000


@pytest.fixture(scope="module")
def state(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ResponderState, list[Request]]]:
    ca = tmp_path_factory.mktemp("responder") / "ca"
    subprocess.run(
        [str(Path(sys.executable).parent / "hanko"), "init", str(ca)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    cfg = load_config(ca / "hanko.toml")
    issuer = x509.load_pem_x509_certificate(cfg.path(cfg.issuers()[0].config.cert).read_bytes())
    key_id = issuer_info(
        issuer, KeyType(cfg.issuers()[0].config.key_type), cfg.ca.base_url, ocsp=True
    ).key_id
    path = ca / "bench-lmdb"
    path.mkdir()
    store = LmdbStore(path, map_size=cfg.store.map_size.bytes, create=True)
    now = int(time.time())
    serials = load_store(store, key_id, CERTS, 0.1, seed=6960, now=now)
    trio.run(lambda: _refresh_all(cfg, store, CERTS, loaded_at=now))
    picked = random.Random(5019).sample(serials, DISTINCT)
    heads = [
        Request(b"GET", _hanko_get(s, der).encode(), b"", True, None)
        for s, der, _ in _requests(store, picked, issuer)
    ]
    settings = responder_settings(cfg, store_path=path)
    st = ResponderState(settings, lmdb_source(settings, store))
    yield st, heads
    store.close()


def _serve(st: ResponderState, heads: list[Request], *, every_tick: bool) -> None:
    wall = int(time.time())
    i = 0
    for k in range(TICKS):
        st.tick(k * 0.1, wall + k // 10)
        if every_tick:
            st.gen += 1
        for _ in range(PER_TICK):
            wire = st.handle(heads[i])
            i = (i + 1) % len(heads)
    assert isinstance(wire, bytes)  # OCSP answers are never streamed
    assert wire.startswith(b"HTTP/1.1 200 ")


def test_revalidate_every_tick(
    benchmark: BenchmarkFixture, state: tuple[ResponderState, list[Request]]
) -> None:
    st, heads = state
    pedantic(benchmark, lambda: _serve(st, heads, every_tick=True), rounds=10, warmup_rounds=1)


def test_revalidate_every_second(
    benchmark: BenchmarkFixture, state: tuple[ResponderState, list[Request]]
) -> None:
    st, heads = state
    pedantic(benchmark, lambda: _serve(st, heads, every_tick=False), rounds=10, warmup_rounds=1)
