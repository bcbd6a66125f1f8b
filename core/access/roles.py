"""Roles, what each may do, and the principal a request acts as.

A role is a set of capabilities; a route names the one it needs (403 without it). The
accounts a principal acts for bound what it may see at all: anything outside them is
answered as if it did not exist (404), so keys cannot probe other tenants.
"""

from __future__ import annotations

from typing import Literal

import msgspec

Role = Literal["issuer", "reader", "admin"]
Capability = Literal["read", "issue", "revoke", "admin", "eab", "validate"]
ROLES: tuple[Role, ...] = ("issuer", "reader", "admin")

CAPABILITIES: dict[Role, frozenset[Capability]] = {
    # A portal or reseller back end: its customers' certificates, start to end.
    # `eab`: External Account Binding credentials for its accounts' organizations.
    # `validate`: domain validation challenges of its accounts' organizations.
    "issuer": frozenset({"read", "issue", "revoke", "eab", "validate"}),
    # Dashboards and monitoring of the same.
    "reader": frozenset({"read"}),
    # The CA's operators: vetting, accounts, licences, keys; they revoke on problem
    # reports (BR 4.9.5) but never issue themselves.
    "admin": frozenset({"read", "revoke", "admin", "eab", "validate"}),
}


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    id: str  # the audit log's actor
    role: Role
    accounts: frozenset[str] | None  # None: every account (admins only)

    def can(self, capability: Capability) -> bool:
        return capability in CAPABILITIES[self.role]

    def sees(self, account: str) -> bool:
        return self.accounts is None or account in self.accounts


def scope_problem(role: str, accounts: list[str], all_accounts: bool) -> str | None:
    """Why this role and account list cannot make a key, or None. Admin keys vet
    organizations and sell licences for the CA, so they act for every account; every
    other key acts for the accounts named."""
    if role not in ROLES:
        return f"role must be one of {', '.join(ROLES)}, not {role!r}"
    if role == "admin":
        if not all_accounts or accounts:
            return "an admin key acts for every account: give all_accounts and no account"
        return None
    if all_accounts:
        return "only an admin key may act for every account"
    if not accounts:
        return f"an {role} key needs at least one account"
    return None
