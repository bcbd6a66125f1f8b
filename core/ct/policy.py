"""Which logs a certificate's SCTs come from, and when there are enough (pure).

Chrome's policy for embedded SCTs (Apple's is close): SCTs from at least two distinct
log operators, and at least three SCTs when the certificate is valid for more than
180 days (two otherwise). A log that is temporally sharded takes only certificates
whose notAfter falls in its shard, [not_after_start, not_after_end).
"""

from __future__ import annotations

import msgspec

LONG_VALIDITY_DAYS = 180
MIN_OPERATORS = 2


class Log(msgspec.Struct, frozen=True, kw_only=True):
    url: str
    key: bytes  # SubjectPublicKeyInfo DER, as log lists publish it (base64 there)
    operator: str
    not_after_start: int | None = None  # epoch seconds; None: open
    not_after_end: int | None = None
    submit_final: bool = False


def required(validity_seconds: int) -> int:
    """SCTs a certificate valid for `validity_seconds` needs."""
    return 3 if validity_seconds > LONG_VALIDITY_DAYS * 86400 else 2


def eligible(logs: list[Log], not_after: int) -> list[Log]:
    """The logs whose shard takes a certificate ending at `not_after`."""
    return [
        log
        for log in logs
        if (log.not_after_start is None or log.not_after_start <= not_after)
        and (log.not_after_end is None or not_after < log.not_after_end)
    ]


def can_satisfy(logs: list[Log], validity_seconds: int, not_after: int) -> bool:
    """Whether the logs could give what the policy asks, every one answering."""
    usable = eligible(logs, not_after)
    return (
        len(usable) >= required(validity_seconds)
        and len({log.operator for log in usable}) >= MIN_OPERATORS
    )


def satisfied(operators: list[str], validity_seconds: int) -> bool:
    """Whether SCTs from logs of these operators (one entry per SCT) meet the policy."""
    return len(operators) >= required(validity_seconds) and len(set(operators)) >= MIN_OPERATORS


def submission_order(logs: list[Log], not_after: int) -> list[Log]:
    """Eligible logs, one per operator first (operator diversity before a second log
    of an operator already asked), then the rest: the first `required` are raced, the
    others are the reserve when one of them fails."""
    first: list[Log] = []
    rest: list[Log] = []
    seen: set[str] = set()
    for log in eligible(logs, not_after):
        (rest if log.operator in seen else first).append(log)
        seen.add(log.operator)
    return first + rest
