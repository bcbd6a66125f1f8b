"""A challenge id never starts with "-": `hanko domain verify --challenge ID` must take it
as the option's value (one in 64 did not, and the command refused it)."""

from __future__ import annotations

from core.dcv.service import challenge_id


def test_challenge_ids_never_look_like_options() -> None:
    ids = [challenge_id() for _ in range(5000)]
    assert not any(i.startswith("-") for i in ids)
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 16 for i in ids)
