"""A responder host's copy of the replicated status, without Redis: a real LMDB file
written by the copier's side and read by a responder's view. A load fills the copy not
served and swaps it whole; changes patch the served one; envelopes and files move their
generations; an unknown serial is tryLater until the first load; CRLs get content
ETags; readiness follows what the copier observed; the change log's steps."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ocsp.status.copy_source import copy_source
from ocsp.status.copy_store import Beat, CopyStore, CopyView
from ocsp.status.readiness import Observed, readiness
from ocsp.status.redis_layout import (
    LogEntry,
    Profile,
    crl_value,
    log_entry,
    log_fields,
    log_step,
    profile_value,
)


def _ca() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "copy test CA")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(1)
        .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    return cert.public_bytes(serialization.Encoding.DER)


CA = _ca()
PROFILE = Profile(issuer=CA, hashes=[1], ocsp_path="/ocsp", crl_path="/crl",
                  root_crl_path="/crl/root.crl", crl_max_age=60)  # fmt: skip


def load(store: CopyStore, seq: int, items: dict[bytes, bytes], **kw: object) -> None:
    store.begin_load()
    store.put_loaded(list(items.items()))
    store.finish_load(
        seq=seq, log_id=f"{seq}-0".encode(), envelopes=kw.get("envelopes", {}),  # type: ignore[arg-type]
        files=kw.get("files", {}), changes=[], at=1.0,  # type: ignore[arg-type]
    )  # fmt: skip


def test_a_load_swaps_the_copy_whole_and_changes_patch_it(tmp_path: Path) -> None:
    store = CopyStore(tmp_path / "copy")
    view = CopyView(tmp_path / "copy", store.env)
    assert not view.loaded
    assert view.issued(b"a")  # not loaded yet: tryLater, never unauthorized
    load(store, 7, {b"a": b"ra", b"b": b"rb"})
    view.renew()
    assert view.loaded
    assert (view.response(b"a"), view.issued(b"b"), view.issued(b"c")) == (b"ra", True, False)
    gen = view.status_generation()
    store.apply(seq=8, log_id=b"8-0", changes=[("o", b"a", b"ra2"), ("o", b"b", None),
                                              ("o", b"c", b"rc")])  # fmt: skip
    assert (view.response(b"a"), store.seq()) == (b"ra", 8)  # its transaction, until renewed
    view.renew()
    assert view.status_generation() != gen
    assert (view.response(b"a"), view.response(b"b"), view.response(b"c")) == (b"ra2", None, b"rc")
    # A second load: what Redis no longer holds is gone, with no window of emptiness.
    store.begin_load()
    store.put_loaded([(b"z", b"rz")])
    view.renew()
    assert view.response(b"a") == b"ra2"  # the served copy while the other one fills
    store.finish_load(seq=9, log_id=b"9-0", envelopes={}, files={},
                      changes=[("o", b"y", b"ry")], at=2.0)  # fmt: skip
    view.renew()
    assert (view.response(b"a"), view.response(b"z"), view.response(b"y")) == (None, b"rz", b"ry")
    assert (store.seq(), store.log_id(), store.synced_at()) == (9, b"9-0", 2.0)
    view.close()
    store.close()
    # Kept across a restart.
    again = CopyStore(tmp_path / "copy")
    assert (again.seq(), again.counts()) == (9, (2, 0))


def test_only_envelopes_move_the_envelope_generation(tmp_path: Path) -> None:
    store = CopyStore(tmp_path / "copy")
    load(store, 1, {})
    view = CopyView(tmp_path / "copy", store.env)
    gen = view.envelope_generation()
    store.apply(seq=2, log_id=b"2-0", changes=[("o", b"a", b"r")])
    view.renew()
    assert view.envelope_generation() == gen
    store.apply(seq=3, log_id=b"3-0", changes=[("e", b"k", b"env")])
    view.renew()
    assert view.envelope_generation() != gen
    assert view.envelope(b"k") == b"env"


def test_the_copy_and_its_store_are_private(tmp_path: Path) -> None:
    CopyStore(tmp_path / "copy").close()
    assert (tmp_path / "copy").stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "copy" / "data.mdb").stat().st_mode & 0o777 == 0o600


def test_crls_carry_their_content_etag_and_the_root_crl_its_path(tmp_path: Path) -> None:
    store = CopyStore(tmp_path / "copy")
    with pytest.raises(Exception, match="no CA profile"):
        copy_source(tmp_path / "copy", store.env)
    store.set_profile(profile_value(PROFILE))
    load(store, 1, {}, files={b"0.crl": crl_value(1_700_000_000, b"der0"),
                              b"root.crl": crl_value(1_700_000_000, b"root"),
                              b"1.crl": b"not msgpack"})  # fmt: skip
    source = copy_source(tmp_path / "copy", store.env)
    assert source.crl is not None
    first = source.crl("0.crl")
    assert first is not None
    assert first.body == b"der0"
    assert b"Last-Modified: Tue, 14 Nov 2023 22:13:20 GMT\r\n" in first.headers
    assert b"max-age=60" in first.headers
    assert source.crl("1.crl") is None
    root = source.ca_file(b"/crl/root.crl")
    assert root is not None
    assert root.body == b"root"
    assert source.content_type(b"/crl/root.crl") == b"application/pkix-crl"
    assert "/crl/root.crl" in source.paths.ca_files
    # A rebuilt CRL is served once the view is renewed.
    store.apply(seq=2, log_id=b"2-0", changes=[("c", b"0.crl", crl_value(1_700_000_100, b"d2"))])
    source.view.renew()
    again = source.crl("0.crl")
    assert again is not None
    assert again.body == b"d2"
    assert again.etag != first.etag
    # Readiness: what the copier last said, while it says it.
    assert source.ready()[0] is False
    store.beat(Beat(at=1e12, ready=True, body=b'{"ready": true}\n'), synced=True)
    source.view.renew()
    assert source.ready() == (True, b'{"ready": true}\n')
    store.beat(Beat(at=1.0, ready=True, body=b"{}"), synced=False)
    source.view.renew()
    ok, body = source.ready()
    assert not ok
    assert b"has not reported" in body
    # A new profile: the responder is to start again.
    assert not source.stale()
    store.set_profile(profile_value(Profile(issuer=CA, hashes=[2], ocsp_path="/o", crl_path="/c")))
    source.view.renew()
    assert source.stale()


def test_the_change_log_says_when_to_load_everything() -> None:
    entry = log_entry(b"12-0", log_fields(10, [b"k1", b"k2"]))
    assert entry == LogEntry(id=b"12-0", last=12, first=10, keys=[b"k1", b"k2"])
    assert log_step(entry, 9) == "apply"
    assert log_step(entry, 11) == "apply"
    assert log_step(entry, 12) == "skip"
    assert log_step(entry, 8) == "load"  # seq 9 is missing from the log
    assert log_step(log_entry(b"12-1", log_fields(12, [], reload=True)), 12) == "load"
    with pytest.raises(ValueError, match="not a change log entry"):
        log_entry(b"x-0", {b"keys": b""})


def test_readiness_follows_the_link_and_the_copy() -> None:
    def state(seen: Observed, loaded: bool = True, loading: int | None = None) -> object:
        return readiness(seen, loaded=loaded, seq=3, max_lag=5.0, responses=1, crls=0,
                         loading=loading)  # fmt: skip

    seen = Observed(reachable=True, seq=3, role="slave", link_up=True)
    first = readiness(seen, loaded=False, seq=-1, max_lag=5.0, responses=0, crls=0, loading=10)
    assert not first.ready
    assert "10 responses so far" in first.reason
    up = readiness(seen, loaded=True, seq=3, max_lag=5.0, responses=1, crls=0)
    assert (up.ready, up.link, up.role, up.responses) == (True, "up", "replica", 1)
    short = Observed(reachable=True, seq=3, role="slave", link_up=False, link_down_for=2.0)
    assert readiness(short, loaded=True, seq=3, max_lag=5.0, responses=1, crls=0).ready
    long = Observed(reachable=True, seq=3, role="slave", link_up=False, link_down_for=6.0)
    down = readiness(long, loaded=True, seq=3, max_lag=5.0, responses=1, crls=0)
    assert (down.ready, down.lag_seconds) == (False, 6.0)
    assert "down" in down.reason
    empty = Observed(reachable=True, seq=None, role="slave", link_up=True)
    assert (
        "no status" in readiness(empty, loaded=True, seq=3, max_lag=5, responses=1, crls=0).reason
    )
    gone = Observed(reachable=False, seq=3, unreachable_for=9.0)
    away = readiness(gone, loaded=True, seq=3, max_lag=5.0, responses=1, crls=0)
    assert (away.ready, away.redis, away.lag_seconds) == (False, "down", 9.0)
    primary = Observed(reachable=True, seq=3, role="master")
    assert readiness(primary, loaded=True, seq=3, max_lag=5.0, responses=1, crls=0).link == "n/a"
