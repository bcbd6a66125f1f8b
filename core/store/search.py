"""Finding certificates for incident response and audits (`hanko certs search`, the
admin API): which ones name a domain, belong to an organization or account, come from
a profile or an issuer, were issued in a window, have a status or a key type.

The query and the match are pure (`CertQuery`, `Matcher`). On LMDB a search walks the
certificates in serial order (an account's certificates through its index); on
PostgreSQL it is one SQL query over the typed table (core/store/pg_search.py) with the
same semantics, and the same order, so a page cursor means the same on both.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Literal

import msgspec

from core.base.errors import ClientError
from core.store.key_facts import key_facts
from core.store.keys import serial_key
from core.store.records import CERT, CertRecord, CertStatus

if TYPE_CHECKING:
    from core.store.transactions import ReadTxn

MAX_LIMIT = 100_000
# Names as certificates hold them (lower-case A-labels, "*." for a wildcard); `*` in
# a pattern stands for any run of characters.
_PATTERN = re.compile(r"^[a-z0-9*._-]{1,253}$")
Status = Literal["good", "revoked", "expired"]


class CertQuery(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What to look for; every filter given must match. Times are epoch seconds;
    `after` is the serial (hex) a previous page ended with."""

    name: str | None = None
    organization: str | None = None
    account: str | None = None
    profile: str | None = None
    issuer: bytes | None = None  # the issuing CA's key identifier
    issued_after: int | None = None  # not_before at or after
    issued_before: int | None = None  # not_before before
    status: Status | None = None
    key_type: str | None = None
    limit: int = 100
    after: str | None = None

    def checked(self) -> CertQuery:
        """The query with its name lower-cased; ClientError when a field is malformed."""
        name = self.name
        if name is not None:
            name = name.strip().lower()
            if not _PATTERN.match(name):
                raise ClientError(
                    "name must be a DNS name or a pattern of letters, digits, '.', '-' and '*'",
                    code="invalid_query",
                )
        if not 1 <= self.limit <= MAX_LIMIT:
            raise ClientError(f"limit must be from 1 to {MAX_LIMIT}", code="invalid_query")
        if self.after is not None:
            after_key(self.after)
        if (
            self.issued_after is not None
            and self.issued_before is not None
            and self.issued_after >= self.issued_before
        ):
            raise ClientError(
                "issued-after must be earlier than issued-before", code="invalid_query"
            )
        return msgspec.structs.replace(self, name=name)


def after_key(serial_hex: str) -> bytes:
    """The store key a page cursor (a serial in hex) stands for."""
    try:
        return serial_key(bytes.fromhex(serial_hex))
    except ValueError:
        raise ClientError("after must be a serial in hex", code="invalid_query") from None


def like_pattern(name: str) -> str:
    """A name pattern as SQL LIKE (`*` any run; `_` literal)."""
    return name.replace("_", "\\_").replace("*", "%")


class CertHit(msgspec.Struct, frozen=True, kw_only=True):
    serial: str  # hex
    status: Status
    issuer: str  # key identifier, hex
    organization: str
    account: str
    profile: str
    names: list[str]
    key_type: str
    not_before: int
    not_after: int
    revoked_at: int | None = None
    reason: int | None = None
    precertificate_only: bool = False


class CertPage(msgspec.Struct, frozen=True):
    certificates: list[CertHit]
    # The serial to pass as `after` for the next page; None when this one is the last.
    next: str | None


def status_of(status: CertStatus | int, not_after: int, now: int) -> Status:
    if status == CertStatus.REVOKED:
        return "revoked"
    return "expired" if not_after <= now else "good"


class Matcher:
    """Whether a certificate matches a checked query, as of `now`."""

    def __init__(self, query: CertQuery, now: int) -> None:
        self.q = query
        self.now = now
        name = query.name
        self._exact = name if name is not None and "*" not in name else None
        self._pattern = (
            re.compile(".*".join(re.escape(part) for part in name.split("*")))
            if name is not None and "*" in name
            else None
        )

    def names_match(self, names: Iterable[str]) -> bool:
        if self._exact is not None:
            return self._exact in names
        if self._pattern is not None:
            return any(self._pattern.fullmatch(n) for n in names)
        return True

    def matches(self, rec: CertRecord) -> bool:
        """Every filter but the key type (read from the DER, so asked last)."""
        q = self.q
        return (
            (q.organization is None or rec.organization == q.organization)
            # An account's certificates: a precertificate alone is nobody's yet.
            and (q.account is None or (rec.account_id == q.account and not rec.precertificate_only))
            and (q.profile is None or rec.profile == q.profile)
            and (q.issuer is None or rec.issuer == q.issuer)
            and (q.issued_after is None or rec.not_before >= q.issued_after)
            and (q.issued_before is None or rec.not_before < q.issued_before)
            and (q.status is None or status_of(rec.status, rec.not_after, self.now) == q.status)
            and self.names_match(rec.names)
        )


def hit(rec: CertRecord, key_type: str, now: int) -> CertHit:
    return CertHit(
        serial=rec.serial.hex(),
        status=status_of(rec.status, rec.not_after, now),
        issuer=rec.issuer.hex(),
        organization=rec.organization,
        account=rec.account_id,
        profile=rec.profile,
        names=list(rec.names),
        key_type=key_type,
        not_before=rec.not_before,
        not_after=rec.not_after,
        revoked_at=rec.revoked_at,
        reason=None if rec.reason is None else int(rec.reason),
        precertificate_only=rec.precertificate_only,
    )


def scan(txn: ReadTxn, query: CertQuery, now: int) -> CertPage:
    """A search by walking the store (LMDB): every certificate in serial order, or an
    account's through its index."""
    q = query.checked()
    match = Matcher(q, now)
    start = after_key(q.after) if q.after is not None else b""
    found: list[CertHit] = []
    for key, raw in _candidates(txn, q, start):
        rec = CERT.decode(raw)
        if not match.matches(rec):
            continue
        key_type = key_facts(rec.der)[0]
        if q.key_type is not None and key_type != q.key_type:
            continue
        found.append(hit(rec, key_type, now))
        if len(found) >= q.limit:
            return CertPage(found, bytes(key).lstrip(b"\0").hex())
    return CertPage(found, None)


def _candidates(txn: ReadTxn, q: CertQuery, start: bytes) -> Iterable[tuple[bytes, bytes]]:
    certs = txn.dbs[b"certs"]
    if q.account is not None:
        for key in sorted(serial_key(s) for s in txn.iter_account_certs(q.account)):
            if key > start:
                raw = txn.txn.get(key, db=certs)
                if raw is not None:
                    yield key, raw
        return
    cur = txn.txn.cursor(db=certs)
    if not cur.set_range(start):
        return
    for key, raw in cur.iternext():
        if key > start:
            yield key, raw


def parse_time(text: str, what: str) -> int:
    """An ISO 8601 date (midnight UTC) or date and time (UTC unless it says) as epoch
    seconds; ClientError naming `what` otherwise."""
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp())
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ClientError(
            f"{what} must be an ISO 8601 date or date and time, e.g. 2026-12-01 or"
            " 2026-12-01T09:00:00+09:00",
            code="invalid_query",
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return int(when.timestamp())


def resolve_issuer(value: str, by_name: Mapping[str, bytes]) -> bytes:
    """An issuer by its configured name, or by its key identifier in hex."""
    if value in by_name:
        return by_name[value]
    try:
        key_id = bytes.fromhex(value)
    except ValueError:
        key_id = b""
    if not key_id:
        names = ", ".join(sorted(by_name)) or "none"
        raise ClientError(
            f"issuer {value!r} is neither a configured issuer ({names}) nor a key identifier"
            " in hex",
            code="invalid_query",
        )
    return key_id


def _iso(epoch: int | None) -> str | None:
    if epoch is None:
        return None
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def page_json(page: CertPage) -> dict[str, object]:
    """A page as the CLI's --json and the admin API give it (times in ISO 8601)."""
    out = []
    for c in page.certificates:
        item = msgspec.to_builtins(c)
        for field in ("not_before", "not_after", "revoked_at"):
            item[field] = _iso(item[field])
        out.append(item)
    return {"certificates": out, "next": page.next}
