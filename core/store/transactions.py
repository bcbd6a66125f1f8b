"""ReadTxn and WriteTxn: every domain of the store in one transaction.

Each domain module (certs, crl, ocsp, licensing, orgs, API keys, audit, counters) adds its own
reads and writes; a transaction is all of them, so one commit can issue a certificate,
charge its licence, schedule its OCSP response and audit it together.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

import lmdb
import msgspec

from core.store.acme import AcmeReads, AcmeWrites
from core.store.api_keys import ApiKeyReads, ApiKeyWrites
from core.store.audit import AuditReads
from core.store.certs import CertReads, CertWrites
from core.store.coupons import CouponReads, CouponWrites
from core.store.dcv import DcvReads, DcvWrites
from core.store.licensing import LicensingReads, LicensingWrites
from core.store.notify import NotifyReads, NotifyWrites
from core.store.ocsp import OcspReads, OcspWrites
from core.store.orgs import OrgReads, OrgWrites
from core.store.renewals import RenewalReads, RenewalWrites
from core.store.replication import ReplicationReads

T = TypeVar("T")


class ReadTxn(
    CertReads,
    OcspReads,
    LicensingReads,
    OrgReads,
    ApiKeyReads,
    AcmeReads,
    NotifyReads,
    CouponReads,
    RenewalReads,
    DcvReads,
    AuditReads,
    ReplicationReads,
):
    """A read-only snapshot. Closing it releases the reader slot."""

    def __enter__(self) -> ReadTxn:
        return self


class Done(msgspec.Struct, Generic[T], frozen=True):
    """A nested transaction that committed, with what its op returned."""

    value: T


class Failed(msgspec.Struct, frozen=True):
    """A nested transaction rolled back, with the error its op raised."""

    error: Exception


Attempt = Done[T] | Failed


class WriteTxn(
    CertWrites,
    OcspWrites,
    LicensingWrites,
    OrgWrites,
    ApiKeyWrites,
    AcmeWrites,
    NotifyWrites,
    CouponWrites,
    RenewalWrites,
    DcvWrites,
    ReadTxn,
):
    """The only way state changes. Each mutation appends its own audit entry."""

    def __init__(self, txn: Any, dbs: dict[bytes, Any], env: Any) -> None:
        super().__init__(txn, dbs)
        self._env = env

    def __enter__(self) -> WriteTxn:
        return self

    def attempt(self, op: Callable[[WriteTxn], T]) -> Attempt[T]:
        """Run `op` in a nested transaction: if it raises, only its own changes are
        rolled back and the error is returned; the enclosing transaction goes on."""
        child = self._env.begin(write=True, parent=self.txn)
        try:
            nested = WriteTxn(child, self.dbs, self._env)
            nested._feeding = self._feeding
            value = op(nested)
        except lmdb.MapFullError:
            # Not this op's fault: the whole group is retried once the map has grown.
            child.abort()
            raise
        except Exception as exc:
            child.abort()
            return Failed(exc)
        child.commit()
        return Done(value)
