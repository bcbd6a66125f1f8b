"""The domain validation methods hanko performs (BR 3.2.2.4), pure: the challenge a
method gives the applicant, and the verdict on what the I/O edge saw.

- dns-change (3.2.2.4.7): the random value in a TXT record at
  `{label}.{domain}`; it validates the domain and every name under it.
- website-change (3.2.2.4.18): the random value in the file
  `http://{domain}/.well-known/pki-validation/{file}` (the file name does not hold
  the value); it validates that name alone. Redirects are followed only as the BR
  allow: 301, 302, 307 or 308, to http or https, on port 80 or 443.
- email (3.2.2.4.4): the random value sent to a constructed address of the domain
  (admin, administrator, webmaster, hostmaster, postmaster), returned by the
  recipient; it validates the domain and every name under it.

A random value has 160 bits (the BR ask 112) and is usable for the configured
lifetime (at most 30 days); a challenge is checked at most MAX_ATTEMPTS times."""

from __future__ import annotations

import base64
import hmac
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

from core.store.dcv import DcvChallenge, DcvMethod

METHODS: tuple[DcvMethod, ...] = ("dns-change", "website-change", "email")
CONSTRUCTED = ("admin", "administrator", "webmaster", "hostmaster", "postmaster")
RANDOM_BYTES = 20  # 160 bits
MAX_ATTEMPTS = 10
MAX_REDIRECTS = 10
REDIRECT_STATUSES = frozenset((301, 302, 307, 308))
AUTHORIZED_PORTS = frozenset((80, 443))
WELL_KNOWN = "/.well-known/pki-validation/"


class ChallengeRefused(ValueError):
    """A challenge that cannot be made as asked (an address that is not constructed)."""


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str  # for the applicant: what was seen, or what was missing
    evidence: dict[str, object] = field(default_factory=dict)


def random_value(raw: bytes) -> str:
    """The applicant's random value from RANDOM_BYTES random bytes: base32, lower case."""
    if len(raw) < 14:
        raise ValueError("a random value needs at least 112 bits")
    return base64.b32encode(raw).decode().rstrip("=").lower()


def file_name(challenge_id: str) -> str:
    """website-change: the file under /.well-known/pki-validation/ (named after the
    challenge, never after the value it holds)."""
    return f"hanko-{challenge_id}.txt"


def new_challenge(
    *,
    challenge_id: str,
    org_id: str,
    domain: str,
    method: DcvMethod,
    raw: bytes,
    now: int,
    lifetime: int,
    actor: str,
    dns_label: str,
    address: str | None = None,
    http_port: int = 80,
) -> DcvChallenge:
    if address is not None and method != "email":
        raise ChallengeRefused(f"an address is only for the email method, not {method}")
    record_name = url = sent_to = ""
    if method == "dns-change":
        record_name = f"{dns_label}.{domain}"
    elif method == "website-change":
        port = "" if http_port == 80 else f":{http_port}"
        url = f"http://{domain}{port}{WELL_KNOWN}{file_name(challenge_id)}"
    else:
        sent_to = constructed_address(domain, address)
    return DcvChallenge(
        id=challenge_id,
        org_id=org_id,
        domain=domain,
        method=method,
        random_value=random_value(raw),
        created_at=now,
        expires_at=now + lifetime,
        actor=actor,
        record_name=record_name,
        url=url,
        sent_to=sent_to,
    )


def constructed_address(domain: str, address: str | None) -> str:
    """BR 3.2.2.4.4: one of the five constructed local parts at the domain itself."""
    if address is None:
        return f"admin@{domain}"
    local, at, where = address.strip().lower().rpartition("@")
    if not at or where != domain or local not in CONSTRUCTED:
        raise ChallengeRefused(
            f"{address!r}: the address must be admin@, administrator@, webmaster@,"
            f" hostmaster@ or postmaster@{domain}"
        )
    return f"{local}@{domain}"


def usable(ch: DcvChallenge, now: int) -> str | None:
    """Why the challenge cannot be checked now (None: it can)."""
    if ch.status == "valid":
        return "this challenge was already used"
    if ch.status == "invalid":
        return "this challenge is spent: ask for a new one"
    if now >= ch.expires_at:
        return "this challenge expired: ask for a new one"
    return None


def check_dns(ch: DcvChallenge, values: list[str], authenticated: bool, now: int) -> Verdict:
    """dns-change: the TXT values found at the record name (DNSSEC-validated or not)."""
    evidence: dict[str, object] = {
        "record_name": ch.record_name,
        "values_seen": values[:10],
        "dnssec": "validated" if authenticated else "insecure",
        "checked_at": now,
    }
    if any(hmac.compare_digest(v.strip(), ch.random_value) for v in values):
        return Verdict(True, f"found at {ch.record_name}", evidence)
    if not values:
        return Verdict(False, f"no TXT record at {ch.record_name}", evidence)
    return Verdict(False, f"no TXT record at {ch.record_name} holds the random value", evidence)


@dataclass(frozen=True)
class Fetched:
    """What the website edge saw: each URL asked with its status, the body of the last
    (bounded), or the reason it stopped."""

    hops: tuple[tuple[str, int], ...]
    body: bytes = b""
    error: str = ""


def check_website(ch: DcvChallenge, fetched: Fetched, now: int) -> Verdict:
    evidence: dict[str, object] = {
        "url": ch.url,
        "hops": [{"url": u, "status": s} for u, s in fetched.hops],
        "checked_at": now,
    }
    if fetched.error:
        return Verdict(False, fetched.error, evidence)
    if not fetched.hops or fetched.hops[-1][1] != 200:
        status = fetched.hops[-1][1] if fetched.hops else 0
        return Verdict(False, f"{ch.url} answered {status}, not 200", evidence)
    text = fetched.body.decode("utf-8", "replace")
    if ch.random_value in text.split():
        return Verdict(True, f"found in {fetched.hops[-1][0]}", evidence)
    return Verdict(False, f"{ch.url} does not hold the random value", evidence)


def next_hop(
    url: str,
    status: int,
    location: str | None,
    hops: int,
    ports: frozenset[int] = AUTHORIZED_PORTS,
) -> tuple[str | None, str]:
    """After a response of `status`: (the URL to ask next, "") to follow a redirect,
    (None, "") when this response is the answer, (None, reason) when the redirect is
    one the BR do not allow. `ports`: 80 and 443 (a test's own port besides)."""
    if status not in REDIRECT_STATUSES:
        if 300 <= status < 400:
            return None, f"{url} redirected with {status}; only 301, 302, 307, 308 are followed"
        return None, ""
    if not location:
        return None, f"{url} redirected without a Location"
    if hops >= MAX_REDIRECTS:
        return None, f"more than {MAX_REDIRECTS} redirects"
    target = urljoin(url, location)
    refused = _target_refusal(url, target, ports)
    return (None, refused) if refused else (target, "")


def _target_refusal(url: str, target: str, ports: frozenset[int]) -> str:
    """Why a redirect from `url` may not go to `target` ("" when it may)."""
    parts = urlsplit(target)
    if parts.scheme not in ("http", "https"):
        return f"{url} redirected to {parts.scheme}:, not http or https"
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return f"{url} redirected to an unusable port"
    if port not in ports:
        return f"{url} redirected to port {port}; only 80 and 443 are allowed"
    if not parts.hostname:
        return f"{url} redirected to a URL without a host"
    return ""


def check_email(ch: DcvChallenge, value: str | None, now: int) -> Verdict:
    evidence: dict[str, object] = {"sent_to": ch.sent_to, "returned_at": now}
    if not value:
        return Verdict(False, "give the random value the e-mail carried (--value)", evidence)
    if hmac.compare_digest(value.strip().lower(), ch.random_value):
        return Verdict(True, f"returned by the recipient of {ch.sent_to}", evidence)
    return Verdict(False, "the value given is not the one sent", evidence)


def mail_text(ch: DcvChallenge, ca_name: str) -> tuple[str, str]:
    """(subject, body) of the e-mail that carries the random value."""
    subject = f"Domain validation for {ch.domain}"
    body = (
        f"{ca_name} was asked to confirm that the holder of\n"
        f"{ch.domain} wants certificates issued for it.\n\n"
        "If you asked for this, give this value back where you asked\n"
        "for the certificate:\n\n"
        f"    {ch.random_value}\n\n"
        f"It can be used until {_utc(ch.expires_at)} UTC. If you did not\n"
        "ask for a certificate, ignore this message: nothing is issued\n"
        "without the value.\n"
    )
    return subject, body


def _utc(epoch: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC).strftime("%Y-%m-%d %H:%M")
