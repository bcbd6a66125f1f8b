"""Setting an account's webhook: the URL checked, a new salt (so the signing secret
changes with every set: setting it again rotates the secret), the secret shown once."""

from __future__ import annotations

import secrets
from collections.abc import Callable

import msgspec

from core.base.errors import NotFound
from core.notify import targets
from core.notify.delivery import secret_text, webhook_secret
from core.store import WriteTxn
from core.store.notify import WebhookRecord


class WebhookIn(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    url: str


class WebhookOut(msgspec.Struct, frozen=True, kw_only=True):
    account: str
    url: str
    secret: str  # shown this once; receivers verify Hanko-Signature with it


def set_webhook(
    account: str, url: str, *, master: bytes, allow_private: bool, now: int, actor: str
) -> Callable[[WriteTxn], WebhookOut]:
    targets.check_url(url, allow_private=allow_private)
    salt = secrets.token_bytes(16)

    def op(txn: WriteTxn) -> WebhookOut:
        if txn.get_account(account) is None:
            raise NotFound(f"no account {account!r}")
        rec = WebhookRecord(account=account, url=url, salt=salt, created_at=now, created_by=actor)
        txn.put_webhook(rec, at_us=now * 1_000_000, actor=actor)
        return WebhookOut(
            account=account, url=url, secret=secret_text(webhook_secret(master, account, salt))
        )

    return op
