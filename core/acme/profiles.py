"""ACME profiles (draft-ietf-acme-profiles), with no I/O: what the directory offers
and which profile an order gets."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from core.acme.problems import Problem
from core.config import ProfileConfig
from core.store import EabRecord


def offered(profiles: Mapping[str, ProfileConfig], active: Collection[str]) -> dict[str, str]:
    """The directory's meta.profiles: each profile some issuer signs now, described."""
    return {
        name: prof.description or f"{prof.level.upper()} certificates"
        for name, prof in sorted(profiles.items())
        if name in active
    }


def chosen(
    asked: str | None,
    eab: EabRecord,
    profiles: Mapping[str, ProfileConfig],
    active: Collection[str],
) -> str:
    """The order's profile: the one asked for, else the credential's default; one that
    does not exist, that the credential does not name or that no issuer signs now is
    invalidProfile."""
    name = asked if asked is not None else eab.profile
    if name not in profiles:
        raise Problem("invalidProfile", f"no profile named {name!r}")
    if name not in eab.allowed_profiles:
        raise Problem("invalidProfile", f"profile {name} is not one this account may use")
    if name not in active:
        raise Problem("invalidProfile", f"profile {name} is not issued now")
    return name
