"""API keys: the credentials of portals, resellers and operators."""

from __future__ import annotations

from collections.abc import Iterator

import msgspec

from core.base.errors import Conflict, NotFound
from core.store.audit import AuditWrites
from core.store.records import API_KEY, ApiKeyRecord
from core.store.txn import Txn


class ApiKeyReads(Txn):
    def get_api_key(self, key_id: str) -> ApiKeyRecord | None:
        raw = self.txn.get(key_id.encode(), db=self.dbs[b"api_keys"])
        return None if raw is None else API_KEY.decode(raw)

    def api_key_by_secret(self, secret_sha256: bytes) -> ApiKeyRecord | None:
        key_id = self.txn.get(secret_sha256, db=self.dbs[b"api_key_secrets"])
        return None if key_id is None else self.get_api_key(key_id.decode())

    def iter_api_keys(self) -> Iterator[ApiKeyRecord]:
        for _key, value in self.txn.cursor(db=self.dbs[b"api_keys"]):
            yield API_KEY.decode(value)


class ApiKeyWrites(ApiKeyReads, AuditWrites):
    def put_api_key(self, rec: ApiKeyRecord, *, at_us: int, actor: str) -> None:
        if not self.txn.put(
            rec.id.encode(), API_KEY.encode(rec), db=self.dbs[b"api_keys"], overwrite=False
        ):
            raise Conflict(f"an API key with id {rec.id!r} exists")
        self.txn.put(rec.secret_sha256, rec.id.encode(), db=self.dbs[b"api_key_secrets"])
        self.audit(
            at_us=at_us,
            actor=actor,
            action="api_key.create",
            subject=rec.id,
            detail={
                "role": rec.role,
                "accounts": "*" if rec.all_accounts else ",".join(rec.accounts),
                "expires_at": str(rec.expires_at),
            },
        )

    def revoke_api_key(self, key_id: str, *, at: int, at_us: int, actor: str) -> ApiKeyRecord:
        """Revoke a key (kept, for the audit log's actors to stay resolvable); revoking a
        revoked key changes nothing."""
        rec = self.get_api_key(key_id)
        if rec is None:
            raise NotFound(f"no API key {key_id!r}")
        if rec.revoked_at:
            return rec
        rec = msgspec.structs.replace(rec, revoked_at=at)
        self.txn.put(rec.id.encode(), API_KEY.encode(rec), db=self.dbs[b"api_keys"])
        self.txn.delete(rec.secret_sha256, db=self.dbs[b"api_key_secrets"])
        self.audit(at_us=at_us, actor=actor, action="api_key.revoke", subject=rec.id)
        return rec
