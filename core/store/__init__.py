"""The LMDB certificate status store: records, transactions and the group-commit writer."""

from core.store.lmdb_store import (
    ENVELOPE_GENERATION_KEY,
    STATUS_GENERATION_KEY,
    ReadTxn,
    Store,
    WriteTxn,
)
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
    RevocationRecord,
    serial_bytes,
)
from core.store.writer import GroupCommitWriter

__all__ = [
    "ENVELOPE_GENERATION_KEY",
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
    "RevocationRecord",
    "Store",
    "WriteTxn",
    "serial_bytes",
]
