"""The store: its interface (backend.py) and back ends (LMDB, the embedded default;
PostgreSQL in pg_store.py, imported where configured), records, one module of reads and
writes per domain (certs, crl, ocsp, licensing, orgs, API keys, audit, counters), the key
layout (keys.py), the responder's read-only view and the group-commit writer."""

from core.store.backend import Store
from core.store.environment import LmdbStore
from core.store.keys import ENVELOPE_GENERATION_KEY, STATUS_GENERATION_KEY, serial_bytes
from core.store.records import (
    AccountRecord,
    AcmeAccountRecord,
    AcmeAuthzRecord,
    AcmeChallenge,
    AcmeOrderRecord,
    ApiKeyRecord,
    AuditEntry,
    BlockedKey,
    CertRecord,
    CertStatus,
    CertStatusView,
    DomainRecord,
    EabRecord,
    IdempotencyRecord,
    LedgerEntry,
    LicenseRecord,
    Lot,
    OcspEnvelope,
    OcspRecord,
    OrgRecord,
    RevocationRecord,
)
from core.store.transactions import Done, Failed, ReadTxn, WriteTxn
from core.store.writer import GroupCommitWriter

__all__ = [
    "ENVELOPE_GENERATION_KEY",
    "STATUS_GENERATION_KEY",
    "AccountRecord",
    "AcmeAccountRecord",
    "AcmeAuthzRecord",
    "AcmeChallenge",
    "AcmeOrderRecord",
    "ApiKeyRecord",
    "AuditEntry",
    "BlockedKey",
    "CertRecord",
    "CertStatus",
    "CertStatusView",
    "DomainRecord",
    "Done",
    "EabRecord",
    "Failed",
    "GroupCommitWriter",
    "IdempotencyRecord",
    "LedgerEntry",
    "LicenseRecord",
    "LmdbStore",
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
