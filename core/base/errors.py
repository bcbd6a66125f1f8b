"""One error hierarchy for the whole project.

Every error a user can cause carries a stable machine code (for JSON APIs and tests)
and a human sentence (for the CLI's one-line message). Anything that is not a
HankoError is a bug and is allowed to show a traceback.
"""

from __future__ import annotations


class HankoError(Exception):
    """Base of every error hanko raises on purpose."""

    code = "error"
    # Whether an API may show the message when the error is the service's (5xx): only
    # for messages written to say nothing of hosts, paths, classes or secrets.
    public_message = False

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self.args[0])

    def fields(self) -> dict[str, str]:
        """Machine-readable facts of the error that go into a JSON error body beside
        its code and message."""
        return {}


class ClientError(HankoError):
    """A request the client must correct (a malformed field, an unknown option): an
    API answers 400. Types not marked as the client's are the service's faults."""

    code = "bad_request"


class ConfigError(HankoError):
    """The configuration is unreadable or invalid; `problems` lists every finding."""

    code = "config_invalid"

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems) if problems else "invalid configuration")
        self.problems = problems


class SecretError(HankoError):
    code = "secret_unavailable"


class StoreError(HankoError):
    code = "store_error"


class PublishError(HankoError):
    """A CRL could not be written to the publish directory (permissions, full disk)."""

    code = "publish_failed"


class StoreFull(StoreError):
    """The LMDB map reached `[store] max_map_size`: writes are refused, reads go on."""

    code = "store_full"


class CommitUnconfirmed(StoreError):
    """A commit the synchronous standby did not confirm in time: it may hold on the
    primary only, so it is not acknowledged (a retry with the same idempotency key is
    safe)."""

    code = "commit_unconfirmed"
    public_message = True


class SchemaMismatch(StoreError):
    code = "store_schema_mismatch"


class StepWaits(StoreError):
    """A schema step that cannot be applied while older hanko are connected; `done`
    lists the steps applied before it."""

    def __init__(self, message: str, done: list[int]) -> None:
        super().__init__(message)
        self.done = done


class DuplicateSerial(StoreError):
    code = "duplicate_serial"


class NotFound(HankoError):
    code = "not_found"


class BootstrapError(HankoError):
    code = "bootstrap_failed"


class HsmUnavailable(HankoError):
    """The HSM module is missing, refuses login or lacks a key: fatal at start-up."""

    code = "hsm_unavailable"


class SignerError(HankoError):
    code = "signer_error"


class SignerOverloaded(SignerError):
    code = "signer_overloaded"


class SignerClosed(SignerError):
    code = "signer_closed"


class ResponderCertificateExpiring(SignerError):
    """The delegated OCSP responder's certificate does not cover a response's minimum
    validity from now (or is not valid yet): nothing is signed with it, and the last
    responses stay served until their nextUpdate. Renew it: `hanko ca renew-responder`."""

    code = "ocsp_responder_expiring"


class PolicyError(HankoError):
    """A request the issuance policy refuses. `code` is stable (clients branch on it);
    the message says what was wrong in words a portal can show to its customer."""

    code = "policy_refused"

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message, code=code)


class CaaForbidden(PolicyError):
    """A CAA record forbids this CA to issue for a name (RFC 8659): nothing is signed
    or charged. Its fields name the name and where the record set was."""

    def __init__(self, name: str, found_at: str, records: str, reason: str) -> None:
        super().__init__("caa_forbidden", f"{name}: {reason}")
        self.name = name
        self.found_at = found_at
        self.records = records

    def fields(self) -> dict[str, str]:
        return {"name": self.name, "found_at": self.found_at, "records": self.records}


class Unavailable(HankoError):
    """A service hanko depends on did not do its part (DNS, the SMTP server): the
    request may be tried again (503)."""


class LookupFailed(Unavailable):
    """A DNS lookup a decision needed did not answer (SERVFAIL, a bogus DNSSEC answer,
    a timeout): never permission; the request may be tried again."""

    code = "caa_lookup_failed"
    public_message = True  # names the client's own name, nothing of the CA's resolver


class NotCorroborated(PolicyError):
    """Too few remote perspectives saw what the primary saw (BR 3.2.2.9): the domain
    validation or CAA decision does not stand. Its fields give the quorum and each
    perspective that did not corroborate, with what it said."""

    def __init__(self, subject: str, reason: str, *, quorum: str, failed: dict[str, str]) -> None:
        super().__init__("not_corroborated", f"{subject}: {reason}")
        self.quorum = quorum
        self.failed = dict(failed)

    def fields(self) -> dict[str, str]:
        return _quorum_fields(self.quorum, self.failed)


class CorroborationUnavailable(Unavailable):
    """Too few remote perspectives answered to corroborate (unreachable, or past the
    deadline): never permission; the request may be tried again, as a new attempt."""

    code = "corroboration_unavailable"
    public_message = True  # names perspective codes and the client's names only

    def __init__(self, message: str, *, quorum: str, failed: dict[str, str]) -> None:
        super().__init__(message)
        self.quorum = quorum
        self.failed = dict(failed)

    def fields(self) -> dict[str, str]:
        return _quorum_fields(self.quorum, self.failed)


def _quorum_fields(quorum: str, failed: dict[str, str]) -> dict[str, str]:
    return {"quorum": quorum, "perspectives": "; ".join(f"{k}: {v}" for k, v in failed.items())}


class Conflict(HankoError):
    code = "conflict"


class MalformedOcspRequest(HankoError):
    """An OCSP request that does not parse as RFC 6960 says: answered malformedRequest."""

    code = "ocsp_malformed"


class CtUnavailable(HankoError):
    """The CT logs did not give a certificate the SCTs it needs by the deadline. Nothing
    is issued or charged; the precertificate's serial (a promise of issuance) stays
    answered for by OCSP and CRLs, and revocable."""

    code = "ct_unavailable"
    public_message = True  # which logs fell short: nothing of the CA's own insides

    def __init__(self, message: str, *, serial: str = "") -> None:
        super().__init__(message)
        self.serial = serial

    def fields(self) -> dict[str, str]:
        return {"serial": self.serial, "kind": "precertificate"} if self.serial else {}
