"""Which licence pays for an issuance, with what: decided on a read snapshot before
anything is signed (a refusal costs no signature), and carried to the commit, where
core/licenses/book.py takes it (and asks the policy again, serialized with every other
issuance).

- A reissue stays on its original's licence and pays only for the names it adds
  (per-name charging); a coupon-paid certificate is reissued free like any other.
- A coupon number pays with that coupon (its licence; another account's coupon is
  answered as a number that does not exist); with per-name charging the other names
  take the licence's next free coupons.
- A renewal within a multi-year coupon's cover, for its common name, is paid by it.
- Otherwise the licence named, or the account's default; a coupon licence without a
  number pays with its next free coupons (ACME orders, through the EAB's licence).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from core.base.errors import NotFound, PolicyError
from core.licenses import coupons
from core.licenses.policy import Operation
from core.store import AccountRecord, CertRecord, LicenseRecord, OrgRecord, ReadTxn


@dataclass(frozen=True)
class Ask:
    """What a request asks of licensing beside its licence."""

    coupon: str | None = None  # a coupon number, as the customer typed it
    dealer: str | None = None  # the dealer code given with it
    per_name: bool = False  # the profile charges one unit per name


@dataclass(frozen=True)
class Plan:
    operation: Operation
    license: str
    units: int = 1  # what a new certificate or a renewal is charged for
    added: int = 0  # a reissue: names beyond those its original paid for
    coupons: tuple[bytes, ...] = ()  # the coupons it redeems (their digests)
    lots: tuple[int, ...] = ()  # the lots of those coupons, in order
    covered: bytes = b""  # the multi-year coupon that pays this renewal


def plan_issue(
    read: ReadTxn,
    *,
    requested: str | None,
    org: OrgRecord,
    names: Sequence[str],
    operation: Operation,
    previous: CertRecord | None,
    not_before: int,
    ask: Ask,
    asked_names: int | None = None,
) -> Plan:
    """`names`: the certificate's; `asked_names`: how many of them were asked for (per-name
    charging counts those: a name added as a courtesy is free)."""
    asked = len(names) if asked_names is None else asked_names
    units = asked if ask.per_name else 1
    if operation == "reissue" and previous is not None and previous.license:
        if read.get_license(previous.license) is None:
            raise PolicyError("license_unknown", f"no license {previous.license!r}")
        if requested is not None and requested != previous.license:
            raise PolicyError(
                "license_mismatch",
                f"a reissue stays on its original's license {previous.license}, not {requested}",
            )
        if ask.coupon is not None:
            raise PolicyError(
                "coupon_not_for_reissue",
                "a reissue is free: it takes no coupon (a coupon is given when applying)",
            )
        paid = max(previous.names_charged, 1)
        added = max(0, asked - paid) if ask.per_name else 0
        return Plan("reissue", previous.license, units=paid, added=added)
    if operation == "reissue":
        operation = "new"  # a certificate from before licensing is reissued as new: it pays
    if ask.coupon is not None:
        coupon = coupons.redeemable(
            read,
            ask.coupon,
            account=org.account,
            dealer=ask.dealer,
            name=names[0],
            now=not_before,
        )
        if requested is not None and requested != coupon.license:
            raise PolicyError(
                "license_mismatch", f"the coupon pays with its own license, not {requested}"
            )
        more = [
            c
            for c in read.free_coupons(coupon.license, not_before, limit=units)
            if c.id != coupon.id
        ][: units - 1]
        return _with_coupons(
            operation,
            coupon.license,
            units,
            [(coupon.id, coupon.lot)] + [(c.id, c.lot) for c in more],
        )
    if operation == "renewal" and previous is not None:
        cover = coupons.covering(read, previous, list(names), not_before)
        if cover:
            return Plan("renewal", previous.license, units=0, covered=cover)
    lic = license_for(read, org, requested)
    if lic.kind == "coupon" and next(read.iter_coupons(lic.id), None) is not None:
        free = read.free_coupons(lic.id, not_before, limit=units)
        return _with_coupons(operation, lic.id, units, [(c.id, c.lot) for c in free])
    return Plan(operation, lic.id, units=units)


def _with_coupons(
    operation: Operation, license_id: str, units: int, found: list[tuple[bytes, int]]
) -> Plan:
    if len(found) < units:
        raise PolicyError(
            "license_exhausted",
            f"license {license_id} has {len(found)} free coupons; this certificate needs"
            f" {units}" + (" (one per name)" if units > 1 else ""),
        )
    return Plan(
        operation,
        license_id,
        units=units,
        coupons=tuple(cid for cid, _ in found),
        lots=tuple(lot for _, lot in found),
    )


def account_of(read: ReadTxn, account_id: str) -> AccountRecord:
    acct = read.get_account(account_id)
    if acct is None:
        raise NotFound(f"no account {account_id!r}")
    return acct


def license_for(read: ReadTxn, org: OrgRecord, requested: str | None) -> LicenseRecord:
    """The license an issuance for `org` draws on: the one named, else its account's
    default. Raises with a precise code when there is none to use."""
    if not org.account:
        raise PolicyError(
            "account_required", f"organization {org.id} belongs to no account: nothing can pay"
        )
    if requested is None:
        acct = account_of(read, org.account)
        if not acct.default_license:
            raise PolicyError(
                "license_required",
                f"account {org.account} has no default license: name one in the request",
            )
        requested = acct.default_license
    lic = read.get_license(requested)
    if lic is None or lic.account != org.account:
        # Another account's licence is answered exactly as one that does not exist:
        # licence ids are not for other tenants to probe.
        raise PolicyError("license_unknown", f"no license {requested!r} for this account")
    return lic
