"""The store's key layout, in one place: database names and how every key is built.

Numbers in keys are big-endian so that LMDB's byte order is their numeric order;
serials are padded to SERIAL_WIDTH for the same reason.
"""

from __future__ import annotations

DB_NAMES = (
    b"meta",
    b"certs",  # serial -> CertRecord
    b"expiry",  # not_after | serial
    b"revocations",  # issuer | partition | serial -> RevocationRecord
    b"counters",  # name -> 8 octets
    b"audit",  # seq -> AuditEntry, append-only
    b"orgs",  # org id -> OrgRecord
    b"domains",  # org id \0 domain -> DomainRecord
    b"blocked_keys",  # SHA-256 of a SubjectPublicKeyInfo -> BlockedKey
    b"idempotency",
    b"ocsp",  # serial -> OcspRecord (flat layout, records.py)
    b"ocsp_due",  # refresh_at | serial
    # CRLs: issuer|partition|serial -> entry DER, issuer|partition|seq -> serial (the
    # order revocations arrived in, for deltas), issuer|partition|not_after|serial (to
    # prune expired entries), issuer|partition -> CrlState.
    b"crl_entries",
    b"crl_log",
    b"crl_expiry",
    b"crl_state",
    # Licenses: account id -> AccountRecord, license id -> LicenseRecord, the ledger
    # (seq -> LedgerEntry, append-only) with its index ("L" license | "A" account, \0,
    # seq), the live certificates of monthly plans (license \0 not_after serial), and
    # every certificate of an account by expiry (account \0 not_after serial).
    b"accounts",
    b"licenses",
    b"ledger",
    b"ledger_index",
    b"license_live",
    b"account_certs",
    b"api_keys",  # key id -> ApiKeyRecord
    b"api_key_secrets",  # SHA-256 of a key's secret -> key id
    # ACME: EAB credentials by kid, accounts by id and by key thumbprint, orders and
    # authorizations by id.
    b"acme_eab",
    b"acme_accounts",
    b"acme_keys",
    b"acme_orders",
    b"acme_authz",
    b"domain_orgs",  # domain \0 org id -> b"": which organizations validated a domain
    b"acme_account_orders",  # ACME account id \0 created (8 octets) order id -> b""
    # Pushed events: account -> WebhookRecord, seq -> OutboxRecord, next attempt | seq,
    # and the marks that make a reminder happen once.
    b"webhooks",
    b"outbox",
    b"outbox_due",
    b"notify_marks",
    # Status replication: seq (8 octets) -> kind (1 octet) | what changed, in commit
    # order, until the replicator has brought Redis that far.
    b"replication",
    # Coupons: SHA-256 of a coupon's number -> CouponRecord; license \0 lot (4) index (4)
    # -> that digest, in the order they were sold.
    b"coupons",
    b"license_coupons",
    # Renewals scheduled for later: id -> ScheduledRenewal; issue_at (8) id -> b"" while
    # scheduled; serial of the certificate renewed -> id while scheduled.
    b"renewals",
    b"renewals_due",
    b"renewals_of",
    # Domain validation challenges: id -> DcvChallenge.
    b"dcv_challenges",
)
MAX_DBS = 64  # LMDB fixes the count at open: room for databases added later
SCHEMA_KEY = b"schema_version"  # in meta
REPLICATION_ON_KEY = b"replication_on"  # in meta: present while changes are fed
REPLICATION_SEQ = "replication_seq"  # counter: the last change fed
REPLICATION_CURSOR = "replication_cursor"  # counter: the last change Redis has

# The counter ReadTxn.status_generation reads; responders read it by key.
STATUS_GENERATION = "cert_status_generation"
STATUS_GENERATION_KEY = STATUS_GENERATION.encode()
# Moves when a responder key's envelope (its certificate) is replaced: responders drop
# what they built with the old one.
ENVELOPE_GENERATION = "ocsp_envelope_generation"
ENVELOPE_GENERATION_KEY = ENVELOPE_GENERATION.encode()
# In meta: a responder key's envelope, and the notBefore (8 octets, epoch seconds) of
# the certificate inside it.
ENVELOPE_PREFIX = b"ocsp_envelope:"
ENVELOPE_SINCE_PREFIX = b"ocsp_envelope_since:"

# A counter per issuer: the latest notAfter of its certificates, raised at issuance.
LAST_EXPIRY_PREFIX = "issuer_last_expiry:"

# Serials are at most 20 octets (RFC 5280 4.1.2.2).
SERIAL_WIDTH = 20


def serial_bytes(serial: int) -> bytes:
    """The store's form of a serial: minimal unsigned big-endian octets, no leading zero."""
    if serial <= 0:
        raise ValueError("serials are positive integers")
    return serial.to_bytes((serial.bit_length() + 7) // 8, "big")


def serial_key(serial: bytes) -> bytes:
    if not 0 < len(serial) <= SERIAL_WIDTH or serial[0] == 0:
        raise ValueError(
            f"serial must be 1..{SERIAL_WIDTH} octets without a leading zero, got {serial.hex()}"
        )
    return serial.rjust(SERIAL_WIDTH, b"\0")


def revocation_key(issuer: bytes, partition: int, serial: bytes) -> bytes:
    """issuer | partition | serial: one LMDB range per CRL partition, in serial order."""
    return issuer + partition.to_bytes(2, "big") + serial_key(serial)


def partition_prefix(issuer: bytes, partition: int) -> bytes:
    return issuer + partition.to_bytes(2, "big")


def seq_key(prefix: bytes, seq: int) -> bytes:
    return prefix + seq.to_bytes(8, "big")


def expiry_key(not_after: int, serial: bytes) -> bytes:
    return not_after.to_bytes(8, "big") + serial_key(serial)


def due_key(at: int, serial: bytes) -> bytes:
    return due_key_at(at, serial_key(serial))


def due_key_at(at: int, key: bytes) -> bytes:
    """`due_key` of a serial already made a store key (`serial_key`)."""
    return at.to_bytes(8, "big") + key


def domain_prefix(org_id: str) -> bytes:
    return org_id.encode() + b"\0"


def domain_key(org_id: str, domain: str) -> bytes:
    return domain_prefix(org_id) + domain.encode()


def domain_org_key(domain: str, org_id: str) -> bytes:
    return domain.encode() + b"\0" + org_id.encode()


def account_prefix(account: str) -> bytes:
    return account.encode() + b"\0"


def account_cert_key(account: str, not_after: int, serial: bytes) -> bytes:
    return account_prefix(account) + expiry_key(not_after, serial)


def live_prefix(license_id: str) -> bytes:
    return license_id.encode() + b"\0"


def live_key(license_id: str, not_after: int, serial: bytes) -> bytes:
    return live_prefix(license_id) + expiry_key(not_after, serial)


def ledger_index_prefix(*, license: str | None = None, account: str | None = None) -> bytes:
    """The ledger index range of one license ("L") or one account ("A")."""
    if license is not None:
        return b"L" + license.encode() + b"\0"
    return b"A" + str(account).encode() + b"\0"


def ledger_index_key(prefix: bytes, seq_key: bytes) -> bytes:
    return prefix + seq_key
