"""Coupons: every unit of a coupon licence has a number, shown once when it is sold and
kept only as its SHA-256 (like API key secrets, the number is random enough that a
slow hash would add nothing). A coupon is redeemed once, by the account that bought it
or one it named, and never refunded or made again.

`coupons`: digest -> CouponRecord; `license_coupons`: license \\0 lot (4) index (4) ->
digest, so a licence's coupons are found in the order they were sold."""

from __future__ import annotations

from collections.abc import Iterator

import msgspec

from core.store.audit import AuditWrites
from core.store.txn import Txn


class CouponRecord(msgspec.Struct, array_like=True, frozen=True, kw_only=True):
    id: bytes  # SHA-256 of the number
    license: str
    lot: int
    index: int  # its place in the lot
    account: str  # the account that bought it
    created_at: int
    expires: int  # redeemed before this, or never (its lot lapses)
    dealer: str = ""  # the dealer code given at purchase, asked again at redemption
    accounts: list[str] = msgspec.field(default_factory=list)  # others who may redeem it
    # A multi-year coupon pays its first certificate and the renewals of the same
    # common name that start before `covered_until` (first redemption + years).
    years: int = 1
    common_name: str = ""
    redeemed_at: int = 0
    serial: bytes = b""  # the certificate that redeemed it
    covered_until: int = 0
    held_by: str = ""  # a scheduled renewal that will redeem it when it is issued

    def redeemable_by(self, account: str) -> bool:
        return account == self.account or account in self.accounts


_DECODE = msgspec.msgpack.Decoder(CouponRecord).decode
_ENCODE = msgspec.msgpack.Encoder().encode


def _order_key(license_id: str, lot: int, index: int) -> bytes:
    return license_id.encode() + b"\0" + lot.to_bytes(4, "big") + index.to_bytes(4, "big")


class CouponReads(Txn):
    def get_coupon(self, digest: bytes) -> CouponRecord | None:
        raw = self.txn.get(digest, db=self.dbs[b"coupons"])
        return None if raw is None else _DECODE(raw)

    def iter_coupons(self, license_id: str) -> Iterator[CouponRecord]:
        """A licence's coupons in the order they were sold."""
        prefix = license_id.encode() + b"\0"
        cur = self.txn.cursor(db=self.dbs[b"license_coupons"])
        if not cur.set_range(prefix):
            return
        for key, digest in cur.iternext():
            if not bytes(key).startswith(prefix):
                return
            rec = self.get_coupon(bytes(digest))
            if rec is not None:
                yield rec

    def free_coupons(self, license_id: str, now: int, *, limit: int) -> list[CouponRecord]:
        """Up to `limit` coupons of a licence not redeemed and not expired, oldest first."""
        found: list[CouponRecord] = []
        for rec in self.iter_coupons(license_id):
            if not rec.redeemed_at and not rec.held_by and now < rec.expires:
                found.append(rec)
                if len(found) >= limit:
                    break
        return found


class CouponWrites(CouponReads, AuditWrites):
    def put_coupon(self, rec: CouponRecord) -> None:
        self.txn.put(rec.id, _ENCODE(rec), db=self.dbs[b"coupons"])
        self.txn.put(
            _order_key(rec.license, rec.lot, rec.index), rec.id, db=self.dbs[b"license_coupons"]
        )
