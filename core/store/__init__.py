"""The LMDB certificate status store: records, transactions and the group-commit writer."""

from core.store.lmdb_store import STATUS_GENERATION_KEY, ReadTxn, Store, WriteTxn
from core.store.records import (
    AccountRecord,
    AuditEntry,
    BlockedKey,
    CertRecord,
    CertStatus,
    CertStatusView,
    DomainRecord,
    IdempotencyRecord,
    LedgerEntry,
    LicenseRecord,
    Lot,
    OcspEnvelope,
    OcspRecord,
    OrgRecord,
    RevocationReason,
    RevocationRecord,
    serial_bytes,
)
from core.store.writer import GroupCommitWriter

__all__ = [
    "STATUS_GENERATION_KEY",
    "AccountRecord",
    "AuditEntry",
    "BlockedKey",
    "CertRecord",
    "CertStatus",
    "CertStatusView",
    "DomainRecord",
    "GroupCommitWriter",
    "IdempotencyRecord",
    "LedgerEntry",
    "LicenseRecord",
    "Lot",
    "OcspEnvelope",
    "OcspRecord",
    "OrgRecord",
    "ReadTxn",
    "RevocationReason",
    "RevocationRecord",
    "Store",
    "WriteTxn",
    "serial_bytes",
]
