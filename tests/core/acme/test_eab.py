"""EAB credentials: keys that every ACME client's command line takes."""

from __future__ import annotations

import itertools

from core.acme.eab import hmac_key, new_salt
from core.acme.jws import b64encode


def test_a_salt_whose_key_starts_with_a_dash_is_drawn_again() -> None:
    master, kid = b"m" * 32, "kid-1"
    salts = (i.to_bytes(16, "big") for i in itertools.count())
    dashed = next(s for s in salts if b64encode(hmac_key(master, kid, s)).startswith("-"))
    fine = next(s for s in salts if not b64encode(hmac_key(master, kid, s)).startswith("-"))
    offered = iter([dashed, fine])
    salt, key = new_salt(master, kid, token=lambda n: next(offered))
    assert salt == fine
    assert key == b64encode(hmac_key(master, kid, fine))
    assert not key.startswith("-")
