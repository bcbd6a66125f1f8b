"""Revocation reasons: the CRLReason codes the BR allow in public TLS CRLs and OCSP
(BR 7.2.2), and their names in the API, the CLI and the configuration."""

from __future__ import annotations

import enum
import typing
from typing import Literal


class RevocationReason(enum.IntEnum):
    UNSPECIFIED = 0
    KEY_COMPROMISE = 1
    AFFILIATION_CHANGED = 3
    SUPERSEDED = 4
    CESSATION_OF_OPERATION = 5
    PRIVILEGE_WITHDRAWN = 9


ReasonName = Literal[
    "unspecified",
    "keyCompromise",
    "affiliationChanged",
    "superseded",
    "cessationOfOperation",
    "privilegeWithdrawn",
]
ALL_REASON_NAMES: tuple[ReasonName, ...] = typing.get_args(ReasonName)

REASONS: dict[ReasonName, RevocationReason] = {
    "unspecified": RevocationReason.UNSPECIFIED,
    "keyCompromise": RevocationReason.KEY_COMPROMISE,
    "affiliationChanged": RevocationReason.AFFILIATION_CHANGED,
    "superseded": RevocationReason.SUPERSEDED,
    "cessationOfOperation": RevocationReason.CESSATION_OF_OPERATION,
    "privilegeWithdrawn": RevocationReason.PRIVILEGE_WITHDRAWN,
}
REASON_NAMES: dict[RevocationReason, ReasonName] = {v: k for k, v in REASONS.items()}
