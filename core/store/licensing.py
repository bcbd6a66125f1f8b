"""Accounts, licences, the append-only ledger and its index, monthly plans' live
certificates, and each account's certificates by expiry."""

from __future__ import annotations

from collections.abc import Iterator

import msgspec

from core.base.errors import StoreError
from core.store.counters import CounterWrites
from core.store.keys import (
    account_prefix,
    ledger_index_key,
    ledger_index_prefix,
    live_key,
    live_prefix,
)
from core.store.records import ACCOUNT, LEDGER, LICENSE, AccountRecord, LedgerEntry, LicenseRecord
from core.store.txn import Txn


class LicensingReads(Txn):
    def get_account(self, account_id: str) -> AccountRecord | None:
        raw = self.txn.get(account_id.encode(), db=self.dbs[b"accounts"])
        return None if raw is None else ACCOUNT.decode(raw)

    def iter_accounts(self) -> Iterator[AccountRecord]:
        for _key, value in self.txn.cursor(db=self.dbs[b"accounts"]):
            yield ACCOUNT.decode(value)

    def get_license(self, license_id: str) -> LicenseRecord | None:
        raw = self.txn.get(license_id.encode(), db=self.dbs[b"licenses"])
        return None if raw is None else LICENSE.decode(raw)

    def iter_licenses(self, account: str | None = None) -> Iterator[LicenseRecord]:
        for _key, value in self.txn.cursor(db=self.dbs[b"licenses"]):
            lic = LICENSE.decode(value)
            if account is None or lic.account == account:
                yield lic

    def iter_ledger(
        self, *, license: str | None = None, account: str | None = None, since: int = 0
    ) -> Iterator[LedgerEntry]:
        """Ledger entries in order: all, or one license's, or one account's."""
        ledger = self.dbs[b"ledger"]
        if license is None and account is None:
            cur = self.txn.cursor(db=ledger)
            if cur.set_range(since.to_bytes(8, "big")):
                for _key, value in cur:
                    yield LEDGER.decode(value)
            return
        prefix = ledger_index_prefix(license=license, account=account)
        cur = self.txn.cursor(db=self.dbs[b"ledger_index"])
        if not cur.set_range(prefix + since.to_bytes(8, "big")):
            return
        for key in cur.iternext(keys=True, values=False):
            if not key.startswith(prefix):
                return
            yield LEDGER.decode(self.txn.get(key[len(prefix) :], db=ledger))

    def count_live(self, license_id: str, now: int) -> int:
        """The live slots of a monthly plan taken at `now`: one per certificate neither
        revoked nor expired, or one per name it was charged for (per-name charging)."""
        prefix = live_prefix(license_id)
        cur = self.txn.cursor(db=self.dbs[b"license_live"])
        n = 0
        if cur.set_range(prefix + now.to_bytes(8, "big")):
            for key, value in cur.iternext():
                if not key.startswith(prefix):
                    break
                n += int.from_bytes(value, "big") if value else 1
        return n

    def iter_account_certs(self, account: str, *, expiring_after: int = 0) -> Iterator[bytes]:
        """Serials of an account's certificates by expiry, from `expiring_after` on."""
        prefix = account_prefix(account)
        cur = self.txn.cursor(db=self.dbs[b"account_certs"])
        if not cur.set_range(prefix + expiring_after.to_bytes(8, "big")):
            return
        for key in cur.iternext(keys=True, values=False):
            if not key.startswith(prefix):
                return
            yield key[len(prefix) + 8 :].lstrip(b"\0")


class LicensingWrites(LicensingReads, CounterWrites):
    def put_account(self, rec: AccountRecord) -> None:
        """Accounts and licenses are audited through the ledger and the callers' audit
        entries; these only store the record."""
        self.txn.put(rec.id.encode(), ACCOUNT.encode(rec), db=self.dbs[b"accounts"])

    def put_license(self, rec: LicenseRecord) -> None:
        self.txn.put(rec.id.encode(), LICENSE.encode(rec), db=self.dbs[b"licenses"])

    def append_ledger(self, entry: LedgerEntry) -> LedgerEntry:
        """Append a movement (its `seq` is assigned here) and index it."""
        seq = self.next_counter("ledger")
        entry = msgspec.structs.replace(entry, seq=seq)
        key = seq.to_bytes(8, "big")
        # append=True: the ledger can only grow at its end, never be rewritten.
        if not self.txn.put(key, LEDGER.encode(entry), db=self.dbs[b"ledger"], append=True):
            raise StoreError(f"ledger sequence {seq} already used")
        index = self.dbs[b"ledger_index"]
        self.txn.put(
            ledger_index_key(ledger_index_prefix(license=entry.license), key), b"", db=index
        )
        self.txn.put(
            ledger_index_key(ledger_index_prefix(account=entry.account), key), b"", db=index
        )
        return entry

    def live_add(self, license_id: str, not_after: int, serial: bytes, *, slots: int = 1) -> None:
        value = b"" if slots <= 1 else slots.to_bytes(4, "big")
        self.txn.put(live_key(license_id, not_after, serial), value, db=self.dbs[b"license_live"])

    def live_remove(self, license_id: str, not_after: int, serial: bytes) -> None:
        self.txn.delete(live_key(license_id, not_after, serial), db=self.dbs[b"license_live"])
