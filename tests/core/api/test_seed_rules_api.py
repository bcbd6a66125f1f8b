"""The seed products' rules as a portal and an operator meet them, against a real
`hanko serve`: a renewal asked early answers 202 scheduled (RPC and `hanko issue
--json`), is listed (`GET /v1/renewals`, `hanko renewals list`) and cancelled (the API,
`hanko renewals cancel`), its hold given back and the books balanced; coupons bought
from the command line print their numbers once and pay over the RPC; check-config
refuses an EV profile with wildcards."""

from __future__ import annotations

import json
from pathlib import Path

from cryptography import x509

from tests.conftest import (
    DevCA,
    Service,
    client,
    csr,
    hanko,
    keyed,
    new_key,
    paying_org,
    serving,
)

SCHEDULING = {
    "append": (
        '\n[issuance.profiles.ov]\nlevel = "ov"\nrenewal_window = "90d"\n'
        'renewal_issue_window = "30d"\n'
    )
}


def test_an_early_renewal_is_scheduled_listed_and_cancelled(
    fresh_ca: DevCA, tmp_path: Path
) -> None:
    with serving(fresh_ca, SCHEDULING) as (base, ca, _):
        admin = client(base, ca, "admin")
        paying_org(admin, "acme")
        rpc = keyed(base, ca, new_key(base, ca, "issuer", "acme")["secret"])
        body = {"csr": csr("www.example.co.jp"), "profile": "ov", "organization": "acme"}
        r = rpc.post("/v1/certificates", json={**body, "validity_days": 40})
        assert r.status_code == 201, r.text
        serial = r.json()["serial"]
        # 40 days left: inside the 90-day renewal window, before the 30-day issue window.
        r = rpc.post("/v1/certificates", json={**body, "renewal_of": serial})
        assert r.status_code == 202, r.text
        scheduled = r.json()
        assert scheduled["status"] == "scheduled"
        assert scheduled["renewal_of"] == serial
        assert scheduled["issue_at"]
        listed = rpc.get("/v1/renewals").json()["renewals"]
        assert [x["id"] for x in listed] == [scheduled["id"]]
        out = hanko("renewals", "list", "-c", str(ca.config_path), "--json")
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["renewals"][0]["id"] == scheduled["id"]
        r = rpc.post(f"/v1/renewals/{scheduled['id']}/cancel")
        assert (r.status_code, r.json()["status"]) == (200, "cancelled")
        r = rpc.post(f"/v1/renewals/{scheduled['id']}/cancel")
        assert (r.status_code, r.json()["error"]) == (409, "renewal_not_scheduled")
        # Another tenant's renewal is answered as one that does not exist.
        paying_org(admin, "other", domain="other.co.jp")
        stranger = keyed(base, ca, new_key(base, ca, "issuer", "other")["secret"])
        assert stranger.post(f"/v1/renewals/{scheduled['id']}/cancel").status_code == 404

        # From the command line: `hanko issue --renewal-of` prints the same shape, and
        # `hanko renewals cancel` gives the hold back.
        request = tmp_path / "www.csr"
        request.write_text(body["csr"])
        out = hanko(
            "issue",
            "-c",
            str(ca.config_path),
            "--csr",
            str(request),
            "--profile",
            "ov",
            "--organization",
            "acme",
            "--renewal-of",
            serial,
            "--json",
        )
        assert out.returncode == 0, out.stderr
        again = json.loads(out.stdout)
        assert (again["status"], again["renewal_of"]) == ("scheduled", serial)
        out = hanko("renewals", "cancel", "-c", str(ca.config_path), again["id"], "--json")
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["status"] == "cancelled"
        check = hanko("licenses", "check", "-c", str(ca.config_path))
        assert check.returncode == 0, check.stdout + check.stderr


def test_coupons_from_the_command_line_pay_over_the_rpc(service: Service) -> None:
    base, ca, _ = service
    admin = client(base, ca, "admin")
    paying_org(admin, "acme")
    out = hanko(
        "licenses",
        "buy",
        "-c",
        str(ca.config_path),
        "acme",
        "acme-coupons",
        "--kind",
        "coupon",
        "--quantity",
        "5",
        "--dealer",
        "D0042",
        "--json",
    )
    assert out.returncode == 0, out.stderr
    numbers = json.loads(out.stdout)["coupons"]
    assert len(numbers) == 5
    shown = hanko("licenses", "show", "-c", str(ca.config_path), "acme", "--json")
    assert not any(n in shown.stdout for n in numbers)  # shown once, at purchase
    rpc = keyed(base, ca, new_key(base, ca, "issuer", "acme")["secret"])
    body = {"csr": csr("www.example.co.jp"), "profile": "ov", "organization": "acme"}
    r = rpc.post("/v1/certificates", json={**body, "coupon": numbers[0], "dealer": "D0042"})
    assert r.status_code == 201, r.text
    assert (r.json()["license"], r.json()["charged"]) == ("acme-coupons", 1)
    x509.load_pem_x509_certificate(r.json()["certificate"].encode())
    r = rpc.post("/v1/certificates", json={**body, "coupon": numbers[0], "dealer": "D0042"})
    assert (r.status_code, r.json()["error"]) == (422, "coupon_redeemed")
    out = hanko(
        "licenses",
        "buy",
        "-c",
        str(ca.config_path),
        "acme",
        "acme-more",
        "--kind",
        "pooled",
        "--quantity",
        "5",
        "--years",
        "1",
        "--dealer",
        "X",
    )
    assert out.returncode != 0
    assert "coupon" in out.stderr
    assert "Traceback" not in out.stderr


def test_check_config_refuses_an_ev_profile_with_wildcards(fresh_ca: DevCA) -> None:
    text = fresh_ca.config_path.read_text()
    fresh_ca.config_path.write_text(
        text + '\n[issuance.profiles.ev]\nlevel = "ev"\nwildcard = true\n'
    )
    out = hanko("check-config", "-c", str(fresh_ca.config_path))
    assert out.returncode != 0
    assert "issuance.profiles.ev.wildcard: an EV profile never issues wildcard names" in out.stderr
