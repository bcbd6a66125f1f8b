"""Who may do what, on every route: three accounts, a customer's issuer key (one
account), a reseller's issuer key (two of them), a reader key, an admin key. Each answer
is the expected 2xx, 403 (a role that lacks the capability) or 404 (outside the key's
accounts, told apart from nothing that does not exist), and a refused call changes
nothing: no audit entry, no certificate, no revocation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from core.issuance.pem import serial_from_hex
from core.store import CertStatus, LmdbStore
from tests.conftest import DevCA, Service, anonymous, client, csr, keyed, new_key, paying_org

A, B, C = "alpha", "bravo", "charlie"
Body = Callable[[], dict[str, Any]]


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    body: Body | None = None

    def send(self, http: httpx.Client, **names: str) -> httpx.Response:
        body = self.body() if self.body is not None else None
        return http.request(self.method, self.path.format(**names), json=body)


def issuance(org: str) -> dict[str, Any]:
    return {"csr": csr(f"www.{org}.co.jp"), "profile": "ov", "organization": org}


def issue_body(org: str) -> Body:
    return lambda: issuance(org)


def batch_body(org: str) -> Body:
    return lambda: {"requests": [issuance(org)]}


def revocation() -> dict[str, Any]:
    return {"reason": "superseded"}


REVOKE: Body = revocation

# Every route but health, schema and the CRL URL list (public), with its account or
# certificate as a placeholder: {own} an account the key acts for, {cert} a certificate.
CUSTOMER_ROUTES = [
    Call("POST", "/v1/certificates", None),  # body set per case
    Call("POST", "/v1/certificates:batch", None),
    Call("GET", "/v1/certificates/{cert}"),
    Call("POST", "/v1/certificates/{cert}/revoke", REVOKE),
    Call("GET", "/v1/accounts/{account}"),
    Call("GET", "/v1/accounts/{account}/inventory"),
    Call("GET", "/v1/accounts/{account}/certificates"),
]
ADMIN_ROUTES = [
    Call("GET", "/v1/statistics"),
    Call("POST", "/v1/admin/accounts", lambda: {"id": "delta", "name": "Delta K.K."}),
    Call("GET", "/v1/admin/accounts"),
    Call("GET", "/v1/admin/accounts/{account}"),
    Call("POST", "/v1/admin/accounts/{account}/administrators", lambda: {"email": "a@c.co.jp"}),
    Call("DELETE", "/v1/admin/accounts/{account}/administrators/a@c.co.jp"),
    Call(
        "POST",
        "/v1/admin/accounts/{account}/licenses",
        lambda: {"id": "extra", "kind": "pooled", "quantity": 3, "years": 1},
    ),
    Call("GET", "/v1/admin/accounts/{account}/licenses/extra"),
    Call("POST", "/v1/admin/accounts/{account}/licenses/extra/add", lambda: {"quantity": 1}),
    Call("POST", "/v1/admin/accounts/{account}/licenses/extra/renew", lambda: {"years": 1}),
    Call(
        "POST",
        "/v1/admin/accounts/{account}/licenses",
        lambda: {"id": "units", "kind": "non_pooled", "quantity": 3},
    ),
    Call("POST", "/v1/admin/accounts/{account}/settings", lambda: {"extras_license": "units"}),
    Call(
        "POST",
        "/v1/admin/accounts/{account}/licenses",
        lambda: {"id": "bundle", "kind": "domain_bundle", "quantity": 1},
    ),
    Call(
        "POST",
        "/v1/admin/accounts/{account}/licenses/bundle/domains",
        lambda: {"domain": "charlie.co.jp"},
    ),
    Call("GET", "/v1/admin/accounts/{account}/inventory"),
    Call("GET", "/v1/admin/accounts/{account}/ledger"),
    Call("GET", "/v1/admin/accounts/{account}/certificates"),
    Call("GET", "/v1/admin/licenses/check"),
    Call(
        "POST",
        "/v1/admin/organizations",
        lambda: {
            "id": "charlie-sub",
            "account": C,
            "level": "ov",
            "organization": "Charlie Japan K.K.",
            "country": "JP",
            "state": "Tokyo-to",
            "locality": "Minato-ku",
        },
    ),
    Call(
        "POST",
        "/v1/admin/organizations/{account}/domains",
        lambda: {"domain": "more.charlie.co.jp", "method": "dns-txt"},
    ),
    Call("DELETE", "/v1/admin/organizations/{account}/domains/more.charlie.co.jp"),
    Call("POST", "/v1/admin/keys", lambda: {"role": "reader", "accounts": [C]}),
    Call("GET", "/v1/admin/keys"),
    Call("GET", "/v1/admin/keys/{key}"),
    Call("POST", "/v1/admin/keys/{key}/revoke"),
]


def audit_by(ca: DevCA, actors: set[str]) -> list[tuple[str, str, str]]:
    with (
        LmdbStore(ca.config.path(ca.config.store.path), readonly=True) as store,
        store.read() as txn,
    ):
        return [(e.actor, e.action, e.subject) for e in txn.iter_audit() if e.actor in actors]


def status_of(ca: DevCA, serial: str) -> CertStatus:
    with (
        LmdbStore(ca.config.path(ca.config.store.path), readonly=True) as store,
        store.read() as txn,
    ):
        rec = txn.get_cert(serial_from_hex(serial))
    assert rec is not None
    return rec.status


def test_every_route_answers_2xx_403_or_404_and_refusals_change_nothing(
    service: Service,
) -> None:
    base, ca, _ = service
    admin_token = client(base, ca, "admin")
    for account in (A, B, C):
        paying_org(admin_token, account, domain=f"{account}.co.jp")
    keys = {
        "customer": new_key(base, ca, "issuer", A),
        "reseller": new_key(base, ca, "issuer", A, B),
        "reader": new_key(base, ca, "reader", A),
        "admin": new_key(base, ca, "admin"),
    }
    http = {name: keyed(base, ca, k["secret"]) for name, k in keys.items()}
    ids = {k["id"] for k in keys.values()}
    setup = keyed(base, ca, new_key(base, ca, "issuer", C)["secret"])
    certs = {}
    for account, issuer in ((A, http["customer"]), (B, http["reseller"]), (C, setup)):
        r = issuer.post("/v1/certificates", json=issuance(account))
        assert r.status_code == 201, r.text
        certs[account] = r.json()["serial"]
    before = audit_by(ca, ids)

    # -- refusals: 403 for a role, 404 outside the accounts; nothing changes -------------
    refusals: list[tuple[str, Call, dict[str, str], int]] = []
    for name in ("customer", "reseller", "reader"):
        refusals += [(name, call, {"account": C, "key": keys["reader"]["id"]}, 403)
                     for call in ADMIN_ROUTES]  # fmt: skip
    outside = {"customer": (B, C), "reseller": (C,), "reader": (B, C)}
    for name, accounts in outside.items():
        for account in accounts:
            where = {"account": account, "cert": certs[account]}
            reads = [c for c in CUSTOMER_ROUTES if c.method == "GET"]
            refusals += [(name, call, where, 404) for call in reads]
            issue_status = 403 if name == "reader" else 404
            refusals += [
                (name, Call("POST", "/v1/certificates", issue_body(account)), where, issue_status),
                (name, Call("POST", "/v1/certificates/{cert}/revoke", REVOKE), where, issue_status),
            ]
    # The reader reads its own account but never writes to it.
    own = {"account": A, "cert": certs[A]}
    refusals += [
        ("reader", Call("POST", "/v1/certificates", issue_body(A)), own, 403),
        ("reader", Call("POST", "/v1/certificates:batch", batch_body(A)), own, 403),
        ("reader", Call("POST", "/v1/certificates/{cert}/revoke", REVOKE), own, 403),
        # An admin vets and sells; it never issues.
        ("admin", Call("POST", "/v1/certificates", issue_body(A)), own, 403),
        ("admin", Call("POST", "/v1/certificates:batch", batch_body(A)), own, 403),
    ]
    for name, call, where, expected in refusals:
        r = call.send(http[name], **where)
        assert r.status_code == expected, (name, call.method, call.path, where, r.text)
        assert r.json()["error"] in ("forbidden", "not_found", "organization_unknown"), r.text
    # A batch for an account outside the key: a 200 whose item is refused as not found.
    r = http["customer"].post("/v1/certificates:batch", json={"requests": [issuance(C)]})
    assert r.status_code == 200
    assert r.json()["results"][0]["error"]["error"] == "organization_unknown"
    assert audit_by(ca, ids) == before
    assert all(status_of(ca, s) is CertStatus.GOOD for s in certs.values())

    # The public routes answer everyone, with a key or without.
    for name in (*http, None):
        who = http[name] if name is not None else anonymous(base, ca)
        for path in ("/healthz", "/readyz", "/v1/schema", "/crl/urls.json", "/acme/directory"):
            assert who.get(path).status_code == 200, (name, path)

    # -- what each key may do: 2xx -------------------------------------------------------
    for name, accounts in (("customer", (A,)), ("reseller", (A, B)), ("reader", (A,))):
        for account in accounts:
            where = {"account": account, "cert": certs[account]}
            for call in (c for c in CUSTOMER_ROUTES if c.method == "GET"):
                r = call.send(http[name], **where)
                assert r.status_code == 200, (name, call.path, r.text)
    for name, account in (("customer", A), ("reseller", B)):
        where = {"account": account, "cert": certs[account]}
        assert (
            Call("POST", "/v1/certificates", issue_body(account)).send(http[name]).status_code
            == 201
        )
        r = Call("POST", "/v1/certificates:batch", batch_body(account)).send(http[name])
        assert r.status_code == 200, r.text
        assert r.json()["results"][0]["result"], r.text
        r = Call("POST", "/v1/certificates/{cert}/revoke", REVOKE).send(http[name], **where)
        assert r.status_code == 200, r.text
    where = {"account": C, "key": keys["reader"]["id"], "cert": certs[C]}
    for call in ADMIN_ROUTES:
        r = call.send(http["admin"], **where)
        assert 200 <= r.status_code < 300, (call.method, call.path, r.text)
    assert http["admin"].get(f"/v1/certificates/{certs[C]}").status_code == 200
    r = http["admin"].post(f"/v1/certificates/{certs[C]}/revoke", json={"reason": "superseded"})
    assert r.status_code == 200, r.text

    # The audit log names the key that acted; the admin revoked the reader key last.
    acted = audit_by(ca, ids)
    assert {actor for actor, _, _ in acted} == {
        keys["customer"]["id"],
        keys["reseller"]["id"],
        keys["admin"]["id"],
    }
    assert (keys["admin"]["id"], "api_key.revoke", keys["reader"]["id"]) in acted
    r = http["reader"].get(f"/v1/certificates/{certs[A]}")  # the same open connection
    assert (r.status_code, r.json()["error"]) == (401, "unauthenticated")


def test_idempotency_keys_are_each_keys_own(service: Service) -> None:
    base, ca, _ = service
    admin = client(base, ca, "admin")
    paying_org(admin, A, domain=f"{A}.co.jp")
    one, two = (keyed(base, ca, new_key(base, ca, "issuer", A)["secret"]) for _ in range(2))
    body = {**issuance(A), "idempotency_key": "order-1"}
    first = one.post("/v1/certificates", json=body)
    again = one.post("/v1/certificates", json=body)
    other = two.post("/v1/certificates", json=body)
    assert first.status_code == again.status_code == other.status_code == 201
    assert first.json()["serial"] == again.json()["serial"]  # a replay for its own key
    assert other.json()["serial"] != first.json()["serial"]  # never another key's answer


def test_eab_credentials_are_made_by_admins_and_their_accounts_issuers(service: Service) -> None:
    base, ca, _ = service
    admin = client(base, ca, "admin")
    for account in (A, B):
        paying_org(admin, account, domain=f"{account}.co.jp")
    customer = keyed(base, ca, new_key(base, ca, "issuer", A)["secret"])
    reader = keyed(base, ca, new_key(base, ca, "reader", A)["secret"])

    def body(account: str) -> dict[str, str]:
        return {"account": account, "organization": account, "profile": "ov"}

    made = customer.post("/v1/acme/eab", json=body(A))
    assert made.status_code == 201, made.text
    assert {"kid", "hmac_key", "directory"} <= set(made.json())
    assert customer.post("/v1/acme/eab", json=body(B)).status_code == 404
    assert reader.post("/v1/acme/eab", json=body(A)).status_code == 403
    theirs = admin.post("/v1/acme/eab", json=body(B))
    assert theirs.status_code == 201
    assert [e["kid"] for e in customer.get("/v1/acme/eab").json()] == [made.json()["kid"]]
    assert len(admin.get("/v1/acme/eab").json()) == 2
    r = customer.post(f"/v1/acme/eab/{theirs.json()['kid']}/revoke")
    assert r.status_code == 404
    r = customer.post(f"/v1/acme/eab/{made.json()['kid']}/revoke")
    assert r.status_code == 200
    assert r.json()["revoked_at"] is not None
    assert all("hmac_key" not in e for e in admin.get("/v1/acme/eab").json())
