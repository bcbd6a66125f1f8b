"""DNS names in certificates: what a customer may ask for, and its canonical form.

Pure. Names are lowercased, internationalised labels become A-labels (IDNA 2008 with
UTS #46 mapping), and everything a public TLS certificate must not carry is refused with
its own code: schemes, paths, ports, IP addresses, bad characters, misplaced wildcards,
names under no public suffix (intranet names, reserved TLDs) and public suffixes
themselves.
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache

import idna
from publicsuffixlist import PublicSuffixList

from core.base.errors import PolicyError

MAX_NAME = 253
MAX_LABEL = 63
MAX_COMMON_NAME = 64  # ub-common-name (RFC 5280)
_LDH = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_ALLOWED_INPUT = re.compile(r"^[^\s&?/:@#%\\\"'<>|`^{}\[\];,=+!$()~]+$")


@lru_cache(maxsize=1)
def _psl() -> PublicSuffixList:
    # ICANN section only: a private-section suffix (github.io) is still a public name.
    return PublicSuffixList(only_icann=True, accept_unknown=False)


def _to_a_label(label: str) -> str:
    if label.isascii():
        if label.startswith("xn--"):
            try:
                # Round trip: a malformed A-label (bad Punycode, disallowed code points)
                # must not reach a certificate.
                if idna.encode(idna.decode(label)).decode() != label:
                    raise PolicyError("name_invalid_idn", f"{label!r} is not a valid A-label")
            except idna.IDNAError as exc:
                raise PolicyError(
                    "name_invalid_idn", f"{label!r} is not a valid A-label: {exc}"
                ) from None
        return label
    try:
        return idna.encode(label, uts46=True, transitional=False).decode()
    except idna.IDNAError as exc:
        raise PolicyError(
            "name_invalid_idn", f"{label!r} is not a valid internationalised label: {exc}"
        ) from None


def _check_host_form(raw: str, name: str) -> None:
    """What customers paste instead of a host name: schemes, paths, addresses, ports."""
    if not name:
        raise PolicyError("name_empty", "a requested name is empty or only spaces")
    if "://" in name:
        raise PolicyError(
            "name_has_scheme", f"{raw!r}: give the host name only, without http:// or https://"
        )
    if "/" in name:
        raise PolicyError("name_has_path", f"{raw!r}: give the host name only, without a path")
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        pass
    else:
        raise PolicyError("name_is_ip", f"{raw!r} is an IP address; certificates here name hosts")
    if ":" in name:
        raise PolicyError("name_has_port", f"{raw!r}: give the host name only, without a port")
    if not _ALLOWED_INPUT.match(name):
        raise PolicyError(
            "name_invalid_characters", f"{raw!r} contains characters not allowed in a host name"
        )


def _split_wildcard(raw: str, labels: list[str], *, allow_wildcard: bool) -> list[str]:
    """The labels under a leading `*` (refused where the profile has no wildcards)."""
    if labels[0] == "*":
        if not allow_wildcard:
            raise PolicyError(
                "wildcard_not_allowed",
                f"{raw!r}: this profile does not issue wildcard certificates",
            )
        labels = labels[1:]
    if any("*" in label for label in labels):
        raise PolicyError(
            "name_invalid_wildcard", f"{raw!r}: '*' may only be the whole leftmost label"
        )
    if any("?" in label for label in labels):
        raise PolicyError("name_invalid_characters", f"{raw!r} contains '?'")
    if len(labels) < 2 or any(not label for label in labels):
        raise PolicyError("name_not_fqdn", f"{raw!r} is not a fully qualified domain name")
    return labels


def _check_public(raw: str, canonical: str) -> None:
    psl = _psl()
    if psl.publicsuffix(canonical) is None:
        raise PolicyError(
            "name_not_public",
            f"{raw!r} is not under a public top-level domain"
            " (intranet and reserved names are refused)",
        )
    if psl.is_public(canonical):
        raise PolicyError(
            "name_is_public_suffix", f"{raw!r} is a public suffix, not a registrable name"
        )


@lru_cache(maxsize=65536)
def normalize_dns_name(raw: str, *, allow_wildcard: bool) -> str:
    """The canonical (lowercase, A-label) form of a requested name, or a PolicyError.

    Pure, so cached: the same names come back with every renewal and reissue. (A
    refusal raises, and lru_cache does not cache exceptions.)"""
    name = raw.strip()
    _check_host_form(raw, name)
    all_labels = name.rstrip(".").lower().split(".")
    labels = _split_wildcard(raw, all_labels, allow_wildcard=allow_wildcard)
    a_labels = [_to_a_label(label) for label in labels]
    for label in a_labels:
        if len(label) > MAX_LABEL or not _LDH.match(label):
            raise PolicyError(
                "name_invalid", f"{raw!r}: label {label!r} is not a valid host name label"
            )
    if all(label.isdigit() for label in a_labels):
        raise PolicyError("name_is_ip", f"{raw!r} looks like an IP address")
    canonical = ".".join(a_labels)
    if len(canonical) > MAX_NAME:
        raise PolicyError("name_too_long", f"{raw!r} is longer than {MAX_NAME} characters")
    _check_public(raw, canonical)
    return ("*." if len(labels) < len(all_labels) else "") + canonical


def registrable_domain(name: str) -> str:
    """The registrable domain (eTLD+1) of a canonical name, wildcard or not."""
    base = name[2:] if name.startswith("*.") else name
    found = _psl().privatesuffix(base)
    if found is None:  # normalize_dns_name already refused such names
        raise PolicyError("name_not_public", f"{name!r} has no registrable domain")
    return str(found)


def covered_by(name: str, domain: str) -> bool:
    """Whether a validated `domain` covers `name` (itself, a subdomain, or a wildcard
    directly or further below it)."""
    base = name[2:] if name.startswith("*.") else name
    return base == domain or base.endswith("." + domain)


def check_common_name(name: str) -> None:
    if len(name) > MAX_COMMON_NAME:
        raise PolicyError(
            "common_name_too_long",
            f"the common name {name!r} is longer than {MAX_COMMON_NAME} characters",
        )
