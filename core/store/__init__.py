"""The LMDB certificate status store: records, transactions and the group-commit writer."""

from core.store.lmdb_store import ReadTxn, Store, WriteTxn
from core.store.records import (
    AuditEntry,
    CertRecord,
    CertStatus,
    RevocationReason,
    RevocationRecord,
    serial_bytes,
)
from core.store.writer import GroupCommitWriter

__all__ = [
    "AuditEntry",
    "CertRecord",
    "CertStatus",
    "GroupCommitWriter",
    "ReadTxn",
    "RevocationReason",
    "RevocationRecord",
    "Store",
    "WriteTxn",
    "serial_bytes",
]
