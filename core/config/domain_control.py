"""The configuration of domain control: CAA before issuance ([caa]), the domain
validations hanko performs for portals ([dcv]), and the SMTP server its e-mail
validation sends through ([email]). Lookups go through [dns] resolver."""

from __future__ import annotations

from typing import Literal

import msgspec

from core.base.units import Duration
from core.config.secret_ref import SecretRef

_STRICT = {"forbid_unknown_fields": True, "kw_only": True, "frozen": True}


class CaaConfig(msgspec.Struct, **_STRICT):
    """CAA (RFC 8659, RFC 8657) on every issuance route, as BR 3.2.2.8 requires."""

    # Off only for a private CA that no public CAA record speaks for.
    enabled: bool = True
    # The issuer domains this CA's customers name in CAA ("pki.example.com"): an
    # `issue` or `issuewild` property naming one of them permits this CA. Required
    # when CAA is on.
    identities: list[str] = msgspec.field(default_factory=list)
    # How long a permitting decision is reused for the same name, account and method;
    # the BR allow 8 hours, which is also the most this accepts. "0s": never reused.
    reuse: Duration = msgspec.field(default_factory=lambda: Duration("8h"))


class DcvConfig(msgspec.Struct, **_STRICT):
    """Domain validation performed by hanko (BR 3.2.2.4): dns-change, website-change,
    email; and whether the operator may still assert one (`hanko domain validate`)."""

    # false: every validation is one hanko performed; attestations are refused.
    allow_attested: bool = True
    # How long a challenge's random value may be used (BR 3.2.2.4.7: at most 30 days).
    challenge_lifetime: Duration = msgspec.field(default_factory=lambda: Duration("30d"))
    # dns-change: the TXT record is placed at "{dns_label}.{domain}".
    dns_label: str = "_validation-hanko"
    # website-change fetches http://{domain}:{http_port}/.well-known/pki-validation/...
    # (80 by the BR; another port only for tests with allow_private_targets).
    http_port: int = 80
    # Loopback and private addresses as targets: for tests only.
    allow_private_targets: bool = False
    # A whole check: every lookup, connection and redirect of it.
    timeout: Duration = msgspec.field(default_factory=lambda: Duration("10s"))


class EmailConfig(msgspec.Struct, **_STRICT):
    """The SMTP server e-mail validation sends through. Without a host the email
    method is refused."""

    host: str = ""
    port: int = 587
    # "starttls" (port 587), "tls" (implicit TLS, port 465); "none" only to a
    # loopback server (a test's, or a local relay that does its own TLS).
    security: Literal["starttls", "tls", "none"] = "starttls"
    user: str = ""
    password: SecretRef | None = None
    sender: str = ""  # the From: address
    # The CA file that verifies the server's certificate ("": the system's).
    ca_file: str = ""
    timeout: Duration = msgspec.field(default_factory=lambda: Duration("30s"))
