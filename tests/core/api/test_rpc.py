"""The signing RPC and the admin preconditions over real HTTP against `hanko serve`."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import DevCA, anonymous, client, csr, openssl_verify, paying_org

Service = tuple[str, DevCA, subprocess.Popen[str]]


def test_issue_get_revoke(ready: tuple[httpx.Client, httpx.Client, DevCA], tmp_path: Path) -> None:
    rpc, _, ca = ready
    r = rpc.post(
        "/v1/certificates",
        json={"csr": csr("www.example.co.jp"), "profile": "ov", "organization": "acme"},
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) == {
        "serial",
        "certificate",
        "chain",
        "not_before",
        "not_after",
        "license",
        "charged",
        "notice",
    }
    assert body["license"] == "acme-pool"
    assert body["charged"] == 199  # the default validity, in certificate-days
    leaf = tmp_path / "leaf.pem"
    leaf.write_text(body["certificate"])
    openssl_verify(ca.directory / "ca", leaf)
    view = rpc.get(f"/v1/certificates/{body['serial']}").json()
    assert view["status"] == "good"
    first = rpc.post(f"/v1/certificates/{body['serial']}/revoke", json={"reason": "keyCompromise"})
    again = rpc.post(f"/v1/certificates/{body['serial']}/revoke", json={"reason": "superseded"})
    assert first.status_code == again.status_code == 200
    assert first.json()["already_revoked"] is False
    assert again.json()["already_revoked"] is True
    assert again.json()["reason"] == "keyCompromise"
    assert rpc.get(f"/v1/certificates/{body['serial']}").json()["status"] == "revoked"


def test_batch(ready: tuple[httpx.Client, httpx.Client, DevCA]) -> None:
    rpc, _, _ = ready
    items: list[dict[str, Any]] = [
        {"csr": csr(f"h{i}.example.co.jp"), "profile": "ov", "organization": "acme"}
        for i in range(20)  # large enough to go through the intake processes
    ]
    items.insert(3, {"csr": csr("www.other.co.jp"), "profile": "ov", "organization": "acme"})
    r = rpc.post("/v1/certificates:batch", json={"requests": items})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert len(results) == 21
    assert results[3]["error"]["error"] == "domain_not_validated"
    assert all(x["result"]["serial"] for i, x in enumerate(results) if i != 3)


def test_idempotency_over_http(ready: tuple[httpx.Client, httpx.Client, DevCA]) -> None:
    rpc, _, _ = ready
    body = {
        "csr": csr("www.example.co.jp"),
        "profile": "ov",
        "organization": "acme",
        "idempotency_key": "portal-order-1",
    }
    a = rpc.post("/v1/certificates", json=body)
    b = rpc.post("/v1/certificates", json=body)
    assert a.status_code == b.status_code == 201
    assert a.json()["serial"] == b.json()["serial"]
    c = rpc.post("/v1/certificates", json={**body, "validity_days": 30})
    assert c.status_code == 409
    assert c.json()["error"] == "idempotency_conflict"


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        (b"{not json", 400, "invalid_json"),
        (b'{"csr": "x", "profile": "ov"}', 422, "invalid_request"),
        (
            b'{"csr": "x", "profile": "ov", "organization": "acme", "colour": 1}',
            422,
            "invalid_request",
        ),
        (b'{"csr": "x", "profile": "ov", "organization": "acme"}', 422, "csr_malformed"),
        (
            b'{"csr": "x", "profile": "ov", "organization": "acme", "validity_days": 0}',
            422,
            "invalid_request",
        ),
        (b"x" * (5 << 20), 413, "body_too_large"),
    ],
)
def test_bad_requests_are_precise_json_errors(
    ready: tuple[httpx.Client, httpx.Client, DevCA], payload: bytes, status: int, code: str
) -> None:
    rpc, _, _ = ready
    r = rpc.post("/v1/certificates", content=payload, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    assert r.json()["error"] == code
    assert r.json()["detail"]


def test_policy_refusals_over_http(ready: tuple[httpx.Client, httpx.Client, DevCA]) -> None:
    rpc, _, _ = ready
    r = rpc.post(
        "/v1/certificates",
        json={
            "csr": csr("www.example.co.jp"),
            "profile": "ov",
            "organization": "acme",
            "validity_days": 500,
        },
    )
    assert (r.status_code, r.json()["error"]) == (422, "validity_too_long")
    r = rpc.get("/v1/certificates/abcdef")
    assert (r.status_code, r.json()["error"]) == (404, "not_found")
    r = rpc.get("/v1/certificates/not-hex")
    assert (r.status_code, r.json()["error"]) == (422, "serial_invalid")
    r = rpc.get("/v1/certificates/" + "f" * 41)
    assert (r.status_code, r.json()["error"]) == (422, "serial_invalid")
    r = rpc.post("/v1/certificates/abcdef/revoke", json={"reason": "keyCompromise"})
    assert (r.status_code, r.json()["error"]) == (404, "not_found")
    r = rpc.post("/v1/certificates/abcdef/revoke", json={"reason": "certificateHold"})
    assert (r.status_code, r.json()["error"]) == (422, "invalid_request")


def test_tokens_do_not_mix(ready: tuple[httpx.Client, httpx.Client, DevCA]) -> None:
    rpc, admin, ca = ready
    body = {"csr": csr("www.example.co.jp"), "profile": "ov", "organization": "acme"}
    assert admin.post("/v1/certificates", json=body).status_code == 403
    assert rpc.post("/v1/admin/organizations", json={}).status_code == 403
    nobody = anonymous(str(rpc.base_url), ca).post("/v1/certificates", json=body)
    assert nobody.status_code == 401


def test_admin_refusals(ready: tuple[httpx.Client, httpx.Client, DevCA]) -> None:
    _, admin, _ = ready
    r = admin.post(
        "/v1/admin/organizations",
        json={
            "id": "bad",
            "level": "ov",
            "organization": "A & B",
            "country": "JP",
            "locality": "Minato-ku",
        },
    )
    assert (r.status_code, r.json()["error"]) == (422, "org_field_invalid")
    r = admin.post(
        "/v1/admin/organizations/nobody/domains", json={"domain": "example.jp", "method": "email"}
    )
    assert (r.status_code, r.json()["error"]) == (404, "not_found")
    r = admin.post(
        "/v1/admin/organizations/acme/domains", json={"domain": "foo.local", "method": "email"}
    )
    assert (r.status_code, r.json()["error"]) == (422, "name_not_public")


def test_a_removed_domain_is_no_longer_issued_for(
    ready: tuple[httpx.Client, httpx.Client, DevCA],
) -> None:
    _, admin, ca = ready
    paying_org(admin, "kanto", domain="kanto.co.jp")
    rpc = client(str(admin.base_url), ca, "rpc", "acme", "kanto")
    body = {"csr": csr("www.kanto.co.jp"), "profile": "ov", "organization": "kanto"}
    assert rpc.post("/v1/certificates", json=body).status_code == 201
    path = "/v1/admin/organizations/kanto/domains/KANTO.co.jp"
    assert rpc.delete(path).status_code == 403  # an issuer key is not an admin's
    r = admin.delete(path)
    assert r.status_code == 200, r.text
    assert (r.json()["organization"], r.json()["domain"]) == ("kanto", "kanto.co.jp")
    refused = rpc.post("/v1/certificates", json={**body, "csr": csr("www.kanto.co.jp")})
    assert (refused.status_code, refused.json()["error"]) == (422, "domain_not_validated")
    again = admin.delete(path)
    assert (again.status_code, again.json()["error"]) == (404, "not_found")
    bad = admin.delete("/v1/admin/organizations/kanto/domains/1.2.3.4")
    assert bad.status_code == 422
    # The other organization's validations are untouched.
    acme = {"csr": csr("www.example.co.jp"), "profile": "ov", "organization": "acme"}
    assert rpc.post("/v1/certificates", json=acme).status_code == 201


def test_schema_is_published(service: Service) -> None:
    base, ca, _ = service
    schema = anonymous(base, ca).get("/v1/schema").json()
    assert {"IssueRequest", "IssueResult", "BatchIssueRequest", "RevokeRequest"} <= set(
        schema["$defs"]
    )
    assert schema["$defs"]["IssueRequest"]["required"] == ["csr", "profile", "organization"]


ORG = {
    "level": "ov",
    "organization": "Future Japan K.K.",
    "country": "JP",
    "state": "Tokyo-to",
    "locality": "Chiyoda-ku",
}


@pytest.mark.parametrize(
    ("validated_at", "code"),
    [("2099-01-01T00:00:00Z", "validation_in_future"), ("2026-01-01T00:00:00", "invalid_request")],
)
def test_validation_dates_must_be_past_and_zoned(
    ready: tuple[httpx.Client, httpx.Client, DevCA], validated_at: str, code: str
) -> None:
    _, admin, _ = ready
    r = admin.post(
        "/v1/admin/organizations", json={"id": "future", **ORG, "validated_at": validated_at}
    )
    assert r.status_code == 422, r.text
    assert r.json()["error"] == code
    # Nothing was recorded: the organization does not exist.
    r = admin.post(
        "/v1/admin/organizations/future/domains", json={"domain": "f.co.jp", "method": "dns-txt"}
    )
    assert r.status_code == 404, r.text
    r = admin.post(
        "/v1/admin/organizations/acme/domains",
        json={"domain": "later.co.jp", "method": "dns-txt", "validated_at": validated_at},
    )
    assert r.status_code == 422, r.text
    assert r.json()["error"] == code
    assert admin.delete("/v1/admin/organizations/acme/domains/later.co.jp").status_code == 404
