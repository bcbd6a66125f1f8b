"""Constrained strings every message shares: identifiers and serials, checked by msgspec
when a request is decoded (so a bad one is a 422 naming the field, never a lookup)."""

from __future__ import annotations

from typing import Annotated

import msgspec

SerialHex = Annotated[
    str, msgspec.Meta(pattern=r"^[0-9a-fA-F]{1,40}$", description="serial in hex")
]
Identifier = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
        description="letters, digits, '.', '_', '-'; at most 64",
    ),
]
CouponNumber = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[0-9A-Za-z -]{16,40}$",
        description="a coupon number, as printed (dashes and spaces ignored)",
    ),
]
