"""The signature a webhook receiver checks: HMAC-SHA256 with the endpoint's secret over
the timestamp and the exact body, in one header (`Hanko-Signature: t=<unix seconds>,
v1=<hex>`). The timestamp is signed so a captured delivery cannot be replayed later
than the receiver's tolerance; the event id in the body lets receivers drop the
duplicates at-least-once delivery brings."""

from __future__ import annotations

import hashlib
import hmac

HEADER = "Hanko-Signature"
# A receiver should refuse a signature older (or newer) than this.
TOLERANCE = 300


def signature(secret: bytes, body: bytes, timestamp: int) -> str:
    mac = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(
    secret: bytes, body: bytes, header: str, *, now: int, tolerance: int = TOLERANCE
) -> bool:
    """What a receiver does (and the tests): the header's timestamp within `tolerance`
    of `now` and one of its v1 values the HMAC of timestamp and body."""
    fields: dict[str, list[str]] = {}
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if sep:
            fields.setdefault(key, []).append(value)
    stamps = fields.get("t", [])
    if len(stamps) != 1 or not stamps[0].isdigit():
        return False
    timestamp = int(stamps[0])
    if abs(now - timestamp) > tolerance:
        return False
    expected = signature(secret, body, timestamp).rsplit("v1=", 1)[1]
    return any(hmac.compare_digest(expected, v) for v in fields.get("v1", []))
