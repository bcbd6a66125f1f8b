"""ACME state: External Account Binding credentials, ACME accounts (by id and by key
thumbprint), orders and authorizations. Each change is audited with the ACME account
(or the operator) as its actor."""

from __future__ import annotations

from collections.abc import Iterator

import msgspec

from core.base.errors import Conflict, NotFound
from core.store.audit import AuditWrites
from core.store.records import (
    ACME_ACCOUNT,
    ACME_AUTHZ,
    ACME_ORDER,
    EAB,
    AcmeAccountRecord,
    AcmeAuthzRecord,
    AcmeOrderRecord,
    EabRecord,
)
from core.store.txn import Txn


class AcmeReads(Txn):
    def get_eab(self, kid: str) -> EabRecord | None:
        raw = self.txn.get(kid.encode(), db=self.dbs[b"acme_eab"])
        return None if raw is None else EAB.decode(raw)

    def iter_eab(self) -> Iterator[EabRecord]:
        for _key, value in self.txn.cursor(db=self.dbs[b"acme_eab"]):
            yield EAB.decode(value)

    def get_acme_account(self, account_id: str) -> AcmeAccountRecord | None:
        raw = self.txn.get(account_id.encode(), db=self.dbs[b"acme_accounts"])
        return None if raw is None else ACME_ACCOUNT.decode(raw)

    def acme_account_by_key(self, thumbprint: str) -> AcmeAccountRecord | None:
        account_id = self.txn.get(thumbprint.encode(), db=self.dbs[b"acme_keys"])
        return None if account_id is None else self.get_acme_account(account_id.decode())

    def get_acme_order(self, order_id: str) -> AcmeOrderRecord | None:
        raw = self.txn.get(order_id.encode(), db=self.dbs[b"acme_orders"])
        return None if raw is None else ACME_ORDER.decode(raw)

    def acme_orders_of(self, account_id: str, *, limit: int = 1000) -> list[str]:
        """The account's order ids, oldest first, at most `limit`."""
        found = self.suffixes(b"acme_account_orders", account_id.encode() + b"\0", limit=limit)
        return [entry[8:].decode() for entry in found]  # after the 8-octet creation time

    def get_acme_authz(self, authz_id: str) -> AcmeAuthzRecord | None:
        raw = self.txn.get(authz_id.encode(), db=self.dbs[b"acme_authz"])
        return None if raw is None else ACME_AUTHZ.decode(raw)


class AcmeWrites(AcmeReads, AuditWrites):
    def put_eab(self, rec: EabRecord, *, at_us: int, actor: str) -> None:
        if not self.txn.put(
            rec.kid.encode(), EAB.encode(rec), db=self.dbs[b"acme_eab"], overwrite=False
        ):
            raise Conflict(f"an EAB credential {rec.kid!r} exists")
        self.audit(
            at_us=at_us,
            actor=actor,
            action="acme.eab_create",
            subject=rec.kid,
            detail={
                "account": rec.account,
                "organization": rec.organization,
                "profile": rec.profile,
                "license": rec.license,
            },
        )

    def revoke_eab(self, kid: str, *, at: int, at_us: int, actor: str) -> EabRecord:
        rec = self.get_eab(kid)
        if rec is None:
            raise NotFound(f"no EAB credential {kid!r}")
        if not rec.revoked_at:
            rec = msgspec.structs.replace(rec, revoked_at=at)
            self.txn.put(kid.encode(), EAB.encode(rec), db=self.dbs[b"acme_eab"])
            self.audit(at_us=at_us, actor=actor, action="acme.eab_revoke", subject=kid)
        return rec

    def bind_acme_account(self, acct: AcmeAccountRecord, *, at_us: int) -> None:
        """Store a new ACME account and bind its EAB credential to it: one account per
        credential, one account per key."""
        eab = self.get_eab(acct.eab_kid)
        if eab is None or eab.revoked_at:
            raise NotFound(f"no EAB credential {acct.eab_kid!r}")
        if eab.acme_account:
            raise Conflict(f"EAB credential {acct.eab_kid} is bound to an account already")
        if not self.txn.put(
            acct.thumbprint.encode(), acct.id.encode(), db=self.dbs[b"acme_keys"], overwrite=False
        ):
            raise Conflict("an account with this key exists")
        self.txn.put(acct.id.encode(), ACME_ACCOUNT.encode(acct), db=self.dbs[b"acme_accounts"])
        bound = msgspec.structs.replace(eab, acme_account=acct.id)
        self.txn.put(eab.kid.encode(), EAB.encode(bound), db=self.dbs[b"acme_eab"])
        self.audit(
            at_us=at_us,
            actor=f"acme:{acct.id}",
            action="acme.account_create",
            subject=acct.id,
            detail={"eab": eab.kid, "account": eab.account},
        )

    def update_acme_account(
        self, acct: AcmeAccountRecord, *, old_thumbprint: str, at_us: int, action: str
    ) -> None:
        """Rewrite an account (contact, status, or its key after a key change)."""
        if acct.thumbprint != old_thumbprint:
            if not self.txn.put(
                acct.thumbprint.encode(),
                acct.id.encode(),
                db=self.dbs[b"acme_keys"],
                overwrite=False,
            ):
                raise Conflict("an account with the new key exists")
            self.txn.delete(old_thumbprint.encode(), db=self.dbs[b"acme_keys"])
        self.txn.put(acct.id.encode(), ACME_ACCOUNT.encode(acct), db=self.dbs[b"acme_accounts"])
        self.audit(at_us=at_us, actor=f"acme:{acct.id}", action=action, subject=acct.id)

    def put_acme_order(
        self, order: AcmeOrderRecord, authz: list[AcmeAuthzRecord], *, at_us: int
    ) -> None:
        for a in authz:
            self.txn.put(a.id.encode(), ACME_AUTHZ.encode(a), db=self.dbs[b"acme_authz"])
        self.txn.put(order.id.encode(), ACME_ORDER.encode(order), db=self.dbs[b"acme_orders"])
        index = order.acme_account.encode() + b"\0" + order.created_at.to_bytes(8, "big")
        self.txn.put(index + order.id.encode(), b"", db=self.dbs[b"acme_account_orders"])
        self.audit(
            at_us=at_us,
            actor=f"acme:{order.acme_account}",
            action=f"acme.order_{order.status}",
            subject=order.id,
            detail={"names": ",".join(order.names)},
        )

    def put_acme_authz(self, authz: AcmeAuthzRecord) -> None:
        self.txn.put(authz.id.encode(), ACME_AUTHZ.encode(authz), db=self.dbs[b"acme_authz"])
