"""Organizations (validated subjects) and their domain validations."""

from __future__ import annotations

from collections.abc import Iterator

from core.base.errors import NotFound
from core.store.audit import AuditWrites
from core.store.keys import domain_key, domain_org_key, domain_prefix
from core.store.records import DOMAIN, ORG, DomainRecord, OrgRecord
from core.store.txn import Txn


class OrgReads(Txn):
    def get_org(self, org_id: str) -> OrgRecord | None:
        raw = self.txn.get(org_id.encode(), db=self.dbs[b"orgs"])
        return None if raw is None else ORG.decode(raw)

    def iter_orgs(self, account: str | None = None) -> Iterator[OrgRecord]:
        """Every organization in id order (of one account, when given)."""
        for _, value in self.txn.cursor(db=self.dbs[b"orgs"]):
            org = ORG.decode(value)
            if account is None or org.account == account:
                yield org

    def orgs_of_domain(self, domain: str) -> list[str]:
        """The organizations holding a validation of exactly `domain`."""
        return [o.decode() for o in self.suffixes(b"domain_orgs", domain.encode() + b"\0")]

    def iter_domains(self, org_id: str) -> Iterator[DomainRecord]:
        prefix = domain_prefix(org_id)
        cur = self.txn.cursor(db=self.dbs[b"domains"])
        if not cur.set_range(prefix):
            return
        for key, value in cur:
            if not key.startswith(prefix):
                return
            yield DOMAIN.decode(value)


class OrgWrites(OrgReads, AuditWrites):
    def put_org(self, org: OrgRecord, *, at_us: int, actor: str) -> None:
        self.txn.put(org.id.encode(), ORG.encode(org), db=self.dbs[b"orgs"])
        self.audit(
            at_us=at_us,
            actor=actor,
            action="org.validate",
            subject=org.id,
            detail={"level": org.level, "organization": org.organization},
        )

    def put_domain(self, rec: DomainRecord, *, at_us: int, actor: str) -> None:
        """Record a domain validation; a domain belongs to an organization on record."""
        if self.get_org(rec.org_id) is None:
            raise NotFound(f"no organization {rec.org_id!r}")
        key = domain_key(rec.org_id, rec.domain)
        self.txn.put(key, DOMAIN.encode(rec), db=self.dbs[b"domains"])
        self.txn.put(domain_org_key(rec.domain, rec.org_id), b"", db=self.dbs[b"domain_orgs"])
        self.audit(
            at_us=at_us,
            actor=actor,
            action="domain.validate",
            subject=rec.domain,
            detail={
                "org": rec.org_id,
                "method": rec.method,
                "attested_by": rec.attested_by,
                "challenge": rec.challenge,
                "evidence": rec.evidence,
            },
        )

    def remove_domain(self, org_id: str, domain: str, *, at_us: int, actor: str) -> DomainRecord:
        """Withdraw a domain validation (the customer lost the domain, or the validation
        was wrong): no certificate names it from then on, reissues and renewals
        included. Certificates already issued stay until they are revoked."""
        key = domain_key(org_id, domain)
        raw = self.txn.get(key, db=self.dbs[b"domains"])
        if raw is None:
            raise NotFound(f"{domain} is not a validated domain of organization {org_id!r}")
        self.txn.delete(key, db=self.dbs[b"domains"])
        self.txn.delete(domain_org_key(domain, org_id), db=self.dbs[b"domain_orgs"])
        self.audit(
            at_us=at_us, actor=actor, action="domain.remove", subject=domain, detail={"org": org_id}
        )
        return DOMAIN.decode(raw)
