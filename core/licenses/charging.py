"""What issuing a certificate takes from a licence, what releasing it gives back, and
what a scheduled renewal holds in the meantime. Pure: a licence and the time in, the
licence as it becomes and its ledger movements out (`Outcome`), or a PolicyError.

Per-name charging (a profile's `charge_per_name`): every name of the certificate takes
one unit (non-pooled, coupon), one live slot (monthly) or one certificate's days
(pooled); a reissue that adds names takes what the added names cost.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import msgspec

from core.base.dnsnames import covered_by
from core.base.errors import PolicyError
from core.licenses import terms
from core.licenses.policy import TERM_KINDS, UNIT_KINDS, UNIT_NAMES, Move, Operation, Outcome
from core.store.records import CertRecord, LicenseRecord


def _refuse(code: str, message: str) -> PolicyError:
    return PolicyError(code, message)


def _per_name(units: int) -> str:
    return f" ({units}: one per name)" if units > 1 else ""


def issue(
    lic: LicenseRecord,
    *,
    operation: Operation,
    allowed_kinds: Sequence[str],
    profile: str,
    names: Iterable[str],
    not_before: int,
    not_after: int,
    now: int,
    offset: int,
    serial: str,
    live: int = 0,
    previous: CertRecord | None = None,
    units: int = 1,
    added: int = 0,
    lots: Sequence[int] = (),
) -> Outcome:
    """What issuing one certificate takes from `lic` (already lapsed to `now`).

    `units`: what it is charged for (its names with per-name charging, else 1);
    `added`, for a reissue: the names it adds beyond those its original paid for (with
    per-name charging). `lots`: the lots of
    the coupons named for it, taken before any other. A reissue otherwise takes nothing:
    it carries the charge of the certificate it replaces (a pooled one gives back the
    days a shorter validity no longer uses). A renewal is a new issuance."""
    if lic.kind not in allowed_kinds:
        raise _refuse(
            "license_wrong_kind",
            f"profile {profile!r} cannot be paid with a {lic.kind} license"
            f" (allowed: {', '.join(allowed_kinds)})",
        )
    if lic.kind in TERM_KINDS and now >= lic.end:
        raise _refuse(
            "license_expired",
            f"license {lic.id}'s term ended on {terms.last_day(lic.end, offset)}:"
            " no new certificates, existing ones can still be listed and revoked",
        )
    if lic.kind == "domain_bundle":
        outside = [n for n in names if not any(covered_by(n, d) for d in lic.domains)]
        if outside:
            raise _refuse(
                "domain_not_covered",
                f"{', '.join(outside)} {'is' if len(outside) == 1 else 'are'} not under a"
                f" domain of license {lic.id} ({', '.join(lic.domains) or 'none registered'})",
            )
    if operation == "reissue":
        return _reissue(
            lic, previous, not_after=not_after, now=now, serial=serial, added=added, live=live
        )
    return take(
        lic,
        units=units,
        not_before=not_before,
        not_after=not_after,
        now=now,
        serial=serial,
        live=live,
        lots=lots,
    )


def take(
    lic: LicenseRecord,
    *,
    units: int,
    not_before: int,
    not_after: int,
    now: int,
    serial: str,
    live: int = 0,
    lots: Sequence[int] = (),
    movement: str = "consume",
    note: str = "",
) -> Outcome:
    """`units` certificates' worth from `lic`: certificate-days (pooled), units
    (non-pooled, coupons), live slots (monthly); nothing from a bundle."""
    if units <= 0 or lic.kind == "domain_bundle":
        return Outcome(lic)
    if lic.kind == "pooled":
        cost = units * terms.whole_days(not_after + 1 - not_before)
        if cost > lic.balance:
            raise _refuse(
                "license_exhausted",
                f"license {lic.id} has {lic.balance} certificate-days left; this certificate"
                f" needs {cost}{_per_name(units)}",
            )
        return Outcome(
            msgspec.structs.replace(lic, balance=lic.balance - cost, consumed=lic.consumed + cost),
            [Move(movement, -cost, now, serial=serial, item="certificate", note=note)],
            charged=cost,
        )
    if lic.kind == "monthly":
        if live + units > lic.quantity:
            raise _refuse(
                "license_exhausted",
                f"license {lic.id} allows {lic.quantity} live certificates and has {live};"
                f" this certificate needs {units}{_per_name(units)}: revoke one or raise the limit",
            )
        return Outcome(lic, charged=0)
    return _take_units(
        lic,
        now=now,
        serial=serial,
        item="certificate",
        note=note,
        count=units,
        lots=lots,
        movement=movement,
    )


def _reissue(
    lic: LicenseRecord,
    previous: CertRecord | None,
    *,
    not_after: int,
    now: int,
    serial: str,
    added: int,
    live: int,
) -> Outcome:
    if previous is None:
        raise ValueError("a reissue needs the certificate it replaces")
    if previous.license != lic.id:
        raise _refuse(
            "license_mismatch",
            f"certificate {previous.serial.hex()} was paid with license"
            f" {previous.license or '(none)'}: a reissue stays on it",
        )
    moves = [Move("transfer", 0, now, serial=serial, lot=previous.lot, note=previous.serial.hex())]
    charged = previous.charged
    new = lic
    if lic.kind == "pooled" and not previous.released:
        back = min(charged, terms.whole_days(max(0, previous.not_after - not_after)))
        if back:
            moves.append(
                Move("return", back, now, serial=previous.serial.hex(), item="certificate")
            )
            new = msgspec.structs.replace(
                lic, balance=lic.balance + back, returned=lic.returned + back
            )
            charged -= back
    if added > 0:  # names added by the reissue, each charged (per-name charging)
        extra = take(
            new, units=added, not_before=now, not_after=not_after, now=now, serial=serial, live=live
        )
        return Outcome(
            extra.license, moves + extra.moves, charged=charged + extra.charged, lot=previous.lot
        )
    return Outcome(new, moves, charged=charged, lot=previous.lot)


def release(lic: LicenseRecord, cert: CertRecord, *, now: int) -> Outcome:
    """A certificate revoked or replaced before its end. Pooled: its whole days left go
    back (at most what it took). Units and coupons are never returned; a monthly slot
    frees itself (the store's live index)."""
    if lic.kind != "pooled" or cert.released or cert.license != lic.id:
        return Outcome(lic)
    back = min(cert.charged, terms.remaining_days(cert.not_after, now))
    if not back:
        return Outcome(lic)
    return Outcome(
        msgspec.structs.replace(lic, balance=lic.balance + back, returned=lic.returned + back),
        [Move("return", back, now, serial=cert.serial.hex(), item="certificate")],
    )


def take_item(lic: LicenseRecord, *, now: int, item: str, subject: str) -> Outcome:
    """One unit for a non-certificate item (an extra administrator or organization)."""
    if lic.kind not in UNIT_KINDS:
        raise _refuse(
            "license_wrong_kind", f"extra {item}s are paid with units, not a {lic.kind} license"
        )
    return _take_units(lic, now=now, serial="", item=item, note=subject, count=1)


def _take_units(
    lic: LicenseRecord,
    *,
    now: int,
    serial: str,
    item: str,
    note: str,
    count: int,
    lots: Sequence[int] = (),
    movement: str = "consume",
) -> Outcome:
    """`count` units, from the named lots first (one each), then oldest first: lots are
    appended as bought. All of them or none."""
    current = {lot.seq: lot for lot in lic.lots}
    usable = {
        s: lot.quantity - lot.used - lot.lapsed if now < lot.expires else 0
        for s, lot in current.items()
    }
    available = sum(max(0, u) for u in usable.values())
    taken: list[int] = []
    for seq in lots:
        if usable.get(seq, 0) <= 0:
            raise _refuse("coupon_unusable", f"lot {seq} of license {lic.id} has no unit left")
        usable[seq] -= 1
        taken.append(seq)
    for seq in sorted(usable):
        while len(taken) < count and usable[seq] > 0:
            usable[seq] -= 1
            taken.append(seq)
    if len(taken) < count:
        if lic.lots and lic.lots[-1].lapsed and not available:
            # Even the newest lot is past its year: what is left was not used up but lapsed.
            raise _refuse(
                "license_expired",
                f"license {lic.id}'s {UNIT_NAMES[lic.kind]} lapsed a year after purchase",
            )
        unit = UNIT_NAMES[lic.kind]
        if count == 1:
            raise _refuse("license_exhausted", f"license {lic.id} has no {unit} left")
        raise _refuse(
            "license_exhausted",
            f"license {lic.id} has {available} {unit} left; this needs {count}{_per_name(count)}",
        )
    used: dict[int, int] = {}
    for seq in taken:
        used[seq] = used.get(seq, 0) + 1
    new_lots = [
        msgspec.structs.replace(lot, used=lot.used + used[lot.seq]) if lot.seq in used else lot
        for lot in lic.lots
    ]
    return Outcome(
        msgspec.structs.replace(lic, lots=new_lots, consumed=lic.consumed + count),
        [Move(movement, -1, now, lot=seq, serial=serial, item=item, note=note) for seq in taken],
        charged=count,
        lot=taken[0],
    )


# -- scheduled renewals --------------------------------------------------------------


def reserve(
    lic: LicenseRecord,
    *,
    units: int,
    not_before: int,
    not_after: int,
    now: int,
    renewal: str,
    live: int = 0,
    lots: Sequence[int] = (),
) -> Outcome:
    """Hold what a renewal scheduled for `not_before` will take, from now on: no other
    issuance can spend it meanwhile. The ledger says so (`reserve`, with the renewal's
    id); the hold is given back (`unreserve`) when it is issued, cancelled or fails."""
    return take(
        lic,
        units=units,
        not_before=not_before,
        not_after=not_after,
        now=now,
        serial="",
        live=live,
        lots=lots,
        movement="reserve",
        note=renewal,
    )


def unreserve(
    lic: LicenseRecord, *, amount: int, lots: Sequence[int], now: int, renewal: str
) -> Outcome:
    """Give back a renewal's hold: `amount` cert-days (pooled) or one unit per lot."""
    if lic.kind == "pooled" and amount:
        return Outcome(
            msgspec.structs.replace(
                lic, balance=lic.balance + amount, consumed=lic.consumed - amount
            ),
            [Move("unreserve", amount, now, item="certificate", note=renewal)],
        )
    if lic.kind in UNIT_KINDS and lots:
        back: dict[int, int] = {}
        for seq in lots:
            back[seq] = back.get(seq, 0) + 1
        new_lots = [
            msgspec.structs.replace(lot, used=lot.used - back[lot.seq]) if lot.seq in back else lot
            for lot in lic.lots
        ]
        return Outcome(
            msgspec.structs.replace(lic, lots=new_lots, consumed=lic.consumed - len(lots)),
            [Move("unreserve", 1, now, lot=seq, item="certificate", note=renewal) for seq in lots],
        )
    return Outcome(lic)
