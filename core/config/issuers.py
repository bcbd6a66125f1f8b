"""The issuing CAs: `[[ca.issuers]]`, one table each, and the one-issuer form of older
files (`[ca] issuer_cert`, `issuer_key_label`, ...) read as a list of one.

An issuer with no profiles is inactive: it issues nothing and still signs its CRLs and
OCSP responses (Boulder's issuance.Issuer). A retired one was active once; it keeps
signing status until its last certificate has expired (BR 4.9.7, 4.9.10).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Literal
from urllib.parse import urlsplit

import msgspec

_STRICT = {"forbid_unknown_fields": True, "kw_only": True, "frozen": True}

KeyTypeName = Literal["ecdsa-p256", "ecdsa-p384", "rsa-2048", "rsa-3072"]
# A name goes into URLs, file names and counters: lower case, digits and dashes.
NAME_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$"
_NAME = re.compile(NAME_PATTERN)
IssuerName = Annotated[str, msgspec.Meta(pattern=NAME_PATTERN)]
# What the one-issuer form's issuer is called (its URLs stay the ones it always had).
LEGACY_NAME = "issuing"
EVERY = "*"  # in `profiles`: every profile


def profiles_of(issuer: IssuerConfig, configured: list[str]) -> frozenset[str]:
    """The profiles an issuer issues for, "*" worked out."""
    return frozenset(configured if EVERY in issuer.profiles else issuer.profiles)


class IssuerConfig(msgspec.Struct, **_STRICT):
    name: IssuerName
    cert: str  # PEM, relative to the configuration's folder
    key_label: str  # the HSM key that signs its certificates, CRLs and responder certificates
    key_type: KeyTypeName = "ecdsa-p256"
    # The profiles it issues for; ["*"]: every profile, added later ones too; empty:
    # inactive (CRLs and OCSP only).
    profiles: list[str] = msgspec.field(default_factory=list)
    ocsp_responder_cert: str = ""
    ocsp_responder_key_label: str = ""
    # 0: [crl] partitions. A certificate's shard is fixed at issuance.
    crl_shards: Annotated[int, msgspec.Meta(ge=0, le=4096)] = 0
    # The folder URL of its CRL shards; default {ca CRL URL}/{name}. It must lie in the
    # status listener's CRL path: the CRL URL itself (one issuer only) or one folder below.
    crl_url: str = ""
    # AIA caIssuers; default {base_url}/ca/{name}.cer.
    issuer_url: str = ""
    # Dates of use: it is chosen for no request outside them.
    not_before: dt.datetime | None = None
    not_after: dt.datetime | None = None
    # Set by `hanko ca issuer retire`: it issues nothing more, whatever `profiles` says.
    retired_at: dt.datetime | None = None


class ResolvedIssuer(msgspec.Struct, frozen=True, kw_only=True):
    """An issuer with every default worked out: what the wiring builds from."""

    config: IssuerConfig
    crl_url: str  # without a trailing slash; shard p is {crl_url}/{p}.crl
    crl_folder: str  # below the publish folder and the CRL path: "" or the name
    issuer_url: str
    crl_shards: int
    legacy: bool  # the one-issuer form ([ca] issuer_cert)

    @property
    def name(self) -> str:
        return self.config.name


def ca_crl_url(base_url: str, crl_url: str) -> str:
    return (crl_url or f"{base_url.rstrip('/')}/crl").rstrip("/")


def resolve(
    issuers: list[IssuerConfig],
    *,
    base_url: str,
    crl_url: str,
    default_shards: int,
    legacy: IssuerConfig | None,
    legacy_issuer_url: str,
) -> list[ResolvedIssuer]:
    """Defaults applied; the legacy issuer keeps the URLs its certificates carry."""
    base = base_url.rstrip("/")
    crl_base = ca_crl_url(base_url, crl_url)
    out: list[ResolvedIssuer] = []
    if legacy is not None:
        out.append(
            ResolvedIssuer(
                config=legacy,
                crl_url=crl_base,
                crl_folder="",
                issuer_url=legacy_issuer_url or f"{base}/ca/issuing.cer",
                crl_shards=default_shards,
                legacy=True,
            )
        )
    for i in issuers:
        url = (i.crl_url or f"{crl_base}/{i.name}").rstrip("/")
        out.append(
            ResolvedIssuer(
                config=i,
                crl_url=url,
                crl_folder=crl_folder(url, crl_base) or "",
                issuer_url=i.issuer_url or f"{base}/ca/{i.name}.cer",
                crl_shards=i.crl_shards or default_shards,
                legacy=False,
            )
        )
    return out


def crl_folder(url: str, crl_base: str) -> str | None:
    """The folder of `url` below the CRL path ("" for the path itself), or None when it
    is not the path or one folder of a valid name below it."""
    path, base = urlsplit(url).path.rstrip("/"), urlsplit(crl_base).path.rstrip("/")
    if path == base:
        return ""
    rest = path.removeprefix(base + "/") if path.startswith(base + "/") else None
    if rest is None or not _NAME.fullmatch(rest):
        return None
    return rest


def list_problems(
    legacy: list[str],
    tables: bool,
    resolved: list[ResolvedIssuer],
    profiles: set[str],
    crl_base: str,
) -> list[str]:
    """`legacy`: the one-issuer form's keys as given (issuer_cert, issuer_key_label,
    ocsp_responder_cert, ocsp_responder_key_label, issuer_url); `tables`: whether the
    file has [[ca.issuers]] tables."""
    if legacy[4] and tables:
        # Ignoring it would leave certificates pointing where the operator did not mean.
        return ["ca.issuer_url: each issuer has its own (issuer_url in [[ca.issuers]])"]
    if legacy[0] and tables:
        return [
            "ca.issuer_cert: the one-issuer form and [[ca.issuers]] cannot be mixed; move "
            "it into [[ca.issuers]] (hanko ca issuer create does that on its own)"
        ]
    if any(legacy[:4]) and not all(legacy[:4]):
        return [
            "ca.issuer_cert: the one-issuer form needs issuer_cert, issuer_key_label, "
            "ocsp_responder_cert and ocsp_responder_key_label"
        ]
    return issuer_problems(resolved, profiles, crl_base)


def issuer_problems(resolved: list[ResolvedIssuer], profiles: set[str], crl_base: str) -> list[str]:
    """What check-config says of the list: names, URLs and folders apart, profiles known,
    dates in order, one issuer at least."""
    problems: list[str] = []
    if not resolved:
        return ["ca.issuers: name at least one issuer (hanko ca issuer create)"]
    seen: dict[str, str] = {}
    for n, r in enumerate(resolved):
        where = "ca" if r.legacy else f"ca.issuers[{n - (1 if resolved[0].legacy else 0)}]"
        i = r.config
        for what, value in (
            ("name", i.name),
            ("key_label", i.key_label),
            ("crl_url", r.crl_url),
            ("issuer_url", r.issuer_url),
            ("ocsp_responder_key_label", i.ocsp_responder_key_label),
        ):
            key = f"{what}:{value}"
            if value and key in seen:
                problems.append(f"{where}.{what}: {value!r} is also {seen[key]}'s")
            seen[key] = i.name
        if not i.ocsp_responder_cert or not i.ocsp_responder_key_label:
            problems.append(
                f"{where}: ocsp_responder_cert and ocsp_responder_key_label are required"
            )
        if crl_folder(r.crl_url, crl_base) is None:
            problems.append(
                f"{where}.crl_url: must be {crl_base} or one folder below it (the status "
                "listener serves CRLs under that path)"
            )
        unknown = sorted(set(i.profiles) - profiles - {EVERY})
        if EVERY in i.profiles and len(i.profiles) > 1:
            problems.append(f'{where}.profiles: "*" (every profile) stands alone')
        if unknown:
            problems.append(f"{where}.profiles: no such profile: {', '.join(unknown)}")
        for what, when in (
            ("not_before", i.not_before),
            ("not_after", i.not_after),
            ("retired_at", i.retired_at),
        ):
            if when is not None and when.tzinfo is None:
                problems.append(f"{where}.{what}: give a time zone (2027-01-01T00:00:00Z)")
        if (
            i.not_before is not None
            and i.not_after is not None
            and i.not_before.tzinfo is not None
            and i.not_after.tzinfo is not None
            and i.not_before >= i.not_after
        ):
            problems.append(f"{where}: not_before must be before not_after")
    folders = [r.crl_folder for r in resolved]
    if len(set(folders)) != len(folders):
        problems.append("ca.issuers: two issuers publish CRLs in one folder (crl_url)")
    return problems
