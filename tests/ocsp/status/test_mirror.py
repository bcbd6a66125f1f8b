"""The responder host's copy of the replicated status, without Redis: loads swap it
whole, changes patch it, envelopes move their generation, CRLs get content ETags, and
readiness follows what the edge observed."""

from __future__ import annotations

from ocsp.status.mirror import Mirror, Observed
from ocsp.status.redis_layout import Layout, Profile, crl_value

LAYOUT = Layout("t:")
PROFILE = Profile(issuer=b"", hashes=[1], ocsp_path="/ocsp", crl_path="/crl",
                  root_crl_path="/crl/root.crl", crl_max_age=60)  # fmt: skip


def mirror(max_lag: float = 5.0) -> Mirror:
    return Mirror(LAYOUT, PROFILE, max_lag=max_lag)


def test_a_load_replaces_everything_and_changes_patch_it() -> None:
    m = mirror()
    assert not m.loaded
    m.load(7, [(LAYOUT.ocsp(b"a"), b"ra"), (LAYOUT.ocsp(b"b"), b"rb"), (b"t:seq", b"7")])
    assert m.loaded
    assert m.seq == 7
    assert (m.response(b"a"), m.issued(b"b"), m.issued(b"c")) == (b"ra", True, False)
    gen = m.status_generation()
    m.apply(8, [(LAYOUT.ocsp(b"a"), b"ra2"), (LAYOUT.ocsp(b"b"), None), (LAYOUT.ocsp(b"c"), b"rc")])
    assert m.seq == 8
    assert m.status_generation() != gen
    assert (m.response(b"a"), m.response(b"b"), m.response(b"c")) == (b"ra2", None, b"rc")
    m.load(9, [(LAYOUT.ocsp(b"z"), b"rz")])
    assert (m.response(b"a"), m.response(b"z")) == (None, b"rz")


def test_only_envelopes_move_the_envelope_generation() -> None:
    m = mirror()
    m.load(1, [])
    gen = m.envelope_generation()
    m.apply(2, [(LAYOUT.ocsp(b"a"), b"r")])
    assert m.envelope_generation() == gen
    m.apply(3, [(LAYOUT.envelope(b"k"), b"env")])
    assert m.envelope_generation() != gen
    assert m.envelope(b"k") == b"env"
    gen = m.envelope_generation()
    m.apply(4, [(LAYOUT.envelope(b"k"), None)])
    assert m.envelope_generation() != gen
    assert m.envelope(b"k") is None


def test_crls_carry_their_content_etag_and_the_root_crl_its_path() -> None:
    m = mirror()
    m.load(1, [(LAYOUT.crl("0.crl"), crl_value(1_700_000_000, b"der0")),
               (LAYOUT.crl("root.crl"), crl_value(1_700_000_000, b"root")),
               (LAYOUT.crl("1.crl"), b"not msgpack")])  # fmt: skip
    first = m.crl("0.crl")
    assert first is not None
    assert first.body == b"der0"
    assert b"Last-Modified: Tue, 14 Nov 2023 22:13:20 GMT\r\n" in first.headers
    assert b"max-age=60" in first.headers
    assert m.crl("1.crl") is None
    other = mirror()
    other.load(1, [(LAYOUT.crl("0.crl"), crl_value(1_700_000_000, b"der0"))])
    again = other.crl("0.crl")
    assert again is not None
    assert again.etag == first.etag
    root = m.ca_file(b"/crl/root.crl")
    assert root is not None
    assert root.body == b"root"
    assert m.content_type(b"/crl/root.crl") == b"application/pkix-crl"
    assert "/crl/root.crl" in m.ca_file_paths()


def test_readiness_follows_the_link_and_the_copy() -> None:
    m = mirror(max_lag=5.0)
    seen = Observed(reachable=True, seq=3, role="slave", link_up=True)
    assert not m.readiness(seen).ready  # nothing loaded yet
    m.load(3, [(LAYOUT.ocsp(b"a"), b"r")])
    state = m.readiness(seen)
    assert (state.ready, state.link, state.role, state.responses) == (True, "up", "replica", 1)
    short = Observed(reachable=True, seq=3, role="slave", link_up=False, link_down_for=2.0)
    assert m.readiness(short).ready  # within max_lag
    long = Observed(reachable=True, seq=3, role="slave", link_up=False, link_down_for=6.0)
    state = m.readiness(long)
    assert not state.ready
    assert state.lag_seconds == 6.0
    assert "down" in state.reason
    empty = Observed(reachable=True, seq=None, role="slave", link_up=True)
    state = m.readiness(empty)
    assert not state.ready
    assert "no status" in state.reason
    assert state.responses == 1
    gone = Observed(reachable=False, seq=3, unreachable_for=9.0)
    state = m.readiness(gone)
    assert not state.ready
    assert state.redis == "down"
    assert state.lag_seconds == 9.0
    primary = Observed(reachable=True, seq=3, role="master")
    assert m.readiness(primary).ready
    assert m.readiness(primary).link == "n/a"
