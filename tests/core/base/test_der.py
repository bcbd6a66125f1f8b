import datetime as dt
import os

import pytest
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from core.base.der import (
    ecdsa_signature_from_raw,
    encode_length,
    generalized_time,
    generalized_time_at,
    read_tlv,
    tlv,
)


# 60 and 61: the last half whose SEQUENCE fits a short length, and the first that does
# not; 66: P-521.
@pytest.mark.parametrize("half", [32, 48, 60, 61, 66])
def test_ecdsa_signature_matches_cryptography(half: int) -> None:
    for i in range(3000):
        raw = bytearray(os.urandom(2 * half))
        if i % 3 == 0:
            raw[0] = 0  # leading zero octets must be dropped
        if i % 5 == 0:
            raw[half] = 0x80  # high bit set must gain a zero octet
        r = int.from_bytes(raw[:half], "big")
        s = int.from_bytes(raw[half:], "big")
        assert ecdsa_signature_from_raw(bytes(raw)) == encode_dss_signature(r, s)


def test_lengths_round_trip() -> None:
    for n in (0, 1, 127, 128, 255, 256, 65535, 1 << 20):
        element = tlv(0x04, b"\0" * n)
        assert read_tlv(element) == (0x04, len(element) - n, len(element))
        assert element[1:].startswith(encode_length(n))


@pytest.mark.parametrize(
    "bad",
    [b"\x30", b"\x30\x05abc", b"\x30\x81\x05abcde", b"\x30\x80", b"\x30\x82\x00\x81" + b"a" * 129],
)
def test_read_tlv_is_strict(bad: bytes) -> None:
    with pytest.raises(ValueError, match="DER"):
        read_tlv(bad)


@pytest.mark.parametrize(
    "seconds",
    [0, 1, 951_782_400, 1_790_000_000, 2**31, 4_107_542_399, 253402300799],
    ids=["epoch", "one", "leap-day-2000", "2026", "2038", "2100", "year-9999"],
)
def test_generalized_time_at_matches_the_datetime_path(seconds: int) -> None:
    at = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=seconds)
    assert generalized_time_at(seconds) == generalized_time(at)


def test_generalized_time_at_keeps_four_digit_years() -> None:
    # (strftime's %Y gives "1" for year 1 on glibc, so there is no datetime path to match)
    assert generalized_time_at(-62135596800) == b"\x18\x0f00010101000000Z"


@pytest.mark.parametrize("seconds", [-62135596801, 253402300800])
def test_generalized_time_at_refuses_years_it_cannot_hold(seconds: int) -> None:
    with pytest.raises(ValueError, match="GeneralizedTime"):
        generalized_time_at(seconds)
