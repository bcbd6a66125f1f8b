"""Domain validation challenges hanko performs (BR 3.2.2.4): the random value given to
the applicant, where it is to appear (a DNS TXT record, a file on the website, an
e-mail sent to a constructed address), until when, and how it ended.

`dcv_challenges`: id -> DcvChallenge."""

from __future__ import annotations

from typing import Literal

import msgspec

from core.store.audit import AuditWrites
from core.store.txn import Txn

DcvMethod = Literal["dns-change", "website-change", "email"]
DcvStatus = Literal["pending", "valid", "invalid"]


class DcvChallenge(msgspec.Struct, array_like=True, frozen=True, kw_only=True):
    id: str
    org_id: str
    domain: str  # the Authorization Domain Name, A-labels
    method: DcvMethod
    random_value: str
    created_at: int
    expires_at: int
    actor: str  # who asked for it
    record_name: str = ""  # dns-change: where the TXT record goes
    url: str = ""  # website-change: the file's URL
    sent_to: str = ""  # email: the constructed address it was sent to
    status: DcvStatus = "pending"
    attempts: int = 0  # checks made; a challenge is spent after MAX_ATTEMPTS
    validated_at: int = 0
    last_error: str = ""


_DECODE = msgspec.msgpack.Decoder(DcvChallenge).decode
_ENCODE = msgspec.msgpack.Encoder().encode


class DcvReads(Txn):
    def get_dcv_challenge(self, challenge_id: str) -> DcvChallenge | None:
        raw = self.txn.get(challenge_id.encode(), db=self.dbs[b"dcv_challenges"])
        return None if raw is None else _DECODE(raw)


class DcvWrites(DcvReads, AuditWrites):
    def put_dcv_challenge(self, rec: DcvChallenge, *, at_us: int, actor: str) -> None:
        self.txn.put(rec.id.encode(), _ENCODE(rec), db=self.dbs[b"dcv_challenges"])
        self.audit(
            at_us=at_us,
            actor=actor,
            action=f"dcv.{rec.status if rec.attempts else 'challenge'}",
            subject=rec.domain,
            detail={
                "org": rec.org_id,
                "challenge": rec.id,
                "method": rec.method,
                "attempts": str(rec.attempts),
                "error": rec.last_error,
                "sent_to": rec.sent_to,
            },
        )
