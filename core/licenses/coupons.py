"""Coupon numbers (the rules of the seed product that sells coupons): every
coupon sold has a number, random and unguessable, shown once in the purchase's answer
and kept only as its SHA-256, with the dealer code given at purchase. A number is
entered (with that dealer code) when applying for a certificate, new or renewal, never
attached afterwards; it is redeemed once, by the account that bought it or one it
named, and never refunded or made again. A multi-year coupon (2 to 5 years, bound to
one common name) pays that name's first certificate and the renewals that start
within its cover.

Runs in the caller's transaction, like core/licenses/book.py."""

from __future__ import annotations

import hashlib
import secrets

import msgspec

from core.base.errors import PolicyError
from core.licenses import terms
from core.store import CertRecord, LicenseRecord, Lot, ReadTxn, WriteTxn
from core.store.coupons import CouponRecord

# Crockford's base32: no I, L, O or U to misread. 20 characters: 100 random bits.
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_READ_AS = str.maketrans({"O": "0", "I": "1", "L": "1"})
_LENGTH = 20
MAX_YEARS = 5


def new_number() -> str:
    raw = "".join(secrets.choice(_ALPHABET) for _ in range(_LENGTH))
    return "-".join(raw[i : i + 4] for i in range(0, _LENGTH, 4))


def digest(number: str) -> bytes:
    """The stored form of a number, as a customer may type it (any case, with or
    without dashes and spaces, O for 0 and I or L for 1)."""
    canonical = number.upper().replace("-", "").replace(" ", "").translate(_READ_AS)
    return hashlib.sha256(b"hanko coupon\0" + canonical.encode()).digest()


def sell(
    txn: WriteTxn,
    lic: LicenseRecord,
    lot: Lot,
    *,
    dealer: str,
    accounts: list[str],
    years: int,
    common_name: str,
) -> list[str]:
    """Numbers for every coupon of a lot just bought: the only time they are shown."""
    if not 1 <= years <= MAX_YEARS:
        raise PolicyError("license_term_invalid", f"a coupon covers 1 to {MAX_YEARS} years")
    if years > 1 and not common_name:
        raise PolicyError(
            "coupon_common_name_required",
            "a multi-year coupon pays the renewals of one common name: name it",
        )
    numbers = []
    for index in range(lot.quantity):
        number = new_number()
        txn.put_coupon(
            CouponRecord(
                id=digest(number),
                license=lic.id,
                lot=lot.seq,
                index=index,
                account=lic.account,
                created_at=lot.at,
                expires=lot.expires,
                dealer=dealer,
                accounts=accounts,
                years=years,
                common_name=common_name,
            )
        )
        numbers.append(number)
    return numbers


def redeemable(
    read: ReadTxn, number: str, *, account: str, dealer: str | None, name: str, now: int
) -> CouponRecord:
    """The coupon a request names, if `account` may redeem it now for a certificate
    whose first name is `name`. Another account's coupon is answered exactly as a
    number that does not exist."""
    coupon = read.get_coupon(digest(number))
    if coupon is None or not coupon.redeemable_by(account):
        raise PolicyError("coupon_unknown", "no such coupon for this account")
    if coupon.redeemed_at or coupon.held_by:
        raise PolicyError("coupon_redeemed", "this coupon was redeemed already")
    if now >= coupon.expires:
        raise PolicyError("coupon_expired", "this coupon lapsed a year after purchase")
    if coupon.dealer and (dealer or "") != coupon.dealer:
        raise PolicyError(
            "coupon_dealer_mismatch", "give the coupon with the dealer code it was sold with"
        )
    if coupon.common_name and name != coupon.common_name:
        raise PolicyError(
            "coupon_common_name_mismatch",
            f"this coupon pays certificates for {coupon.common_name} only",
        )
    return coupon


def covering(read: ReadTxn, previous: CertRecord, names: list[str], not_before: int) -> bytes:
    """The multi-year coupon that pays a renewal of `previous` for `names` starting at
    `not_before` (b"" when none does): the same common name, within the cover."""
    if not previous.coupon:
        return b""
    coupon = read.get_coupon(previous.coupon)
    if (
        coupon is None
        or coupon.years < 2
        or not names
        or names[0] != coupon.common_name
        or not_before >= coupon.covered_until
    ):
        return b""
    return coupon.id


def hold(txn: WriteTxn, ids: list[bytes], *, renewal: str) -> None:
    """The coupons a scheduled renewal will redeem, kept from anyone else meanwhile."""
    for cid in ids:
        coupon = txn.get_coupon(cid)
        if coupon is None or coupon.redeemed_at or coupon.held_by:
            raise PolicyError("coupon_redeemed", "this coupon was redeemed already")
        txn.put_coupon(msgspec.structs.replace(coupon, held_by=renewal))


def let_go(txn: WriteTxn, ids: list[bytes], *, renewal: str) -> None:
    """A cancelled or failed renewal's coupons: free again (no certificate used them)."""
    for cid in ids:
        coupon = txn.get_coupon(cid)
        if coupon is not None and coupon.held_by == renewal and not coupon.redeemed_at:
            txn.put_coupon(msgspec.structs.replace(coupon, held_by=""))


def redeem(
    txn: WriteTxn,
    ids: list[bytes],
    *,
    serial: bytes,
    now: int,
    offset: int,
    renewal: str = "",
) -> None:
    """The coupons that paid a certificate, redeemed: never usable again. A scheduled
    renewal's own held coupons are its to redeem."""
    for cid in ids:
        coupon = txn.get_coupon(cid)
        if coupon is None or coupon.redeemed_at or coupon.held_by not in ("", renewal):
            raise PolicyError("coupon_redeemed", "this coupon was redeemed already")
        cover = terms.add_years(now, coupon.years, offset) if coupon.years > 1 else 0
        txn.put_coupon(
            msgspec.structs.replace(
                coupon, redeemed_at=now, serial=serial, covered_until=cover, held_by=""
            )
        )
