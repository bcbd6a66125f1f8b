"""The states of ACME orders and authorizations, as data: they move on their own
(challenges, deactivation, time), and an order follows its authorizations (RFC 8555
7.1.6). Pure: the registration authority reads the records and asks here."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import msgspec

from core.acme.problems import Problem
from core.store import AcmeAuthzRecord, AcmeOrderRecord, ReadTxn


def order_status(authz: Sequence[AcmeAuthzRecord]) -> str:
    """pending while any authorization is; invalid if any failed; ready once all are
    valid (RFC 8555 7.1.6)."""
    states = {a.status for a in authz}
    if states & {"invalid", "deactivated", "expired", "revoked"}:
        return "invalid"
    if "pending" in states:
        return "pending"
    return "ready"


def current(
    txn: ReadTxn, order: AcmeOrderRecord, now: int
) -> tuple[AcmeOrderRecord, list[AcmeAuthzRecord]]:
    """An order as it stands now: its authorizations move on their own (challenges,
    deactivation, time), and a pending or ready order follows them."""
    authz = [expired(a, now) for a in map(txn.get_acme_authz, order.authz) if a is not None]
    if order.status in ("pending", "ready"):
        if order.expires < now:
            return msgspec.structs.replace(order, status="invalid", error="expired"), authz
        return msgspec.structs.replace(order, status=order_status(authz)), authz
    return order, authz


def expired(authz: AcmeAuthzRecord, now: int) -> AcmeAuthzRecord:
    """A pending or valid authorization past its time reads as expired."""
    if authz.status in ("pending", "valid") and authz.expires < now:
        return msgspec.structs.replace(authz, status="expired")
    return authz


def check_contacts(contact: Sequence[str]) -> list[str]:
    """mailto: addresses only, at most 4 (RFC 8555 7.3: unsupportedContact, invalidContact)."""
    if len(contact) > 4:
        raise Problem("invalidContact", "at most 4 contacts")
    out = []
    for c in contact:
        if not c.startswith("mailto:"):
            raise Problem("unsupportedContact", f"only mailto: contacts are accepted, not {c!r}")
        address = c.removeprefix("mailto:")
        local, at, domain = address.partition("@")
        if not at or not local or "." not in domain or "," in address or "?" in address:
            raise Problem("invalidContact", f"{c!r} is not an e-mail address")
        out.append(c)
    return out


def expiry(epoch: int) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
