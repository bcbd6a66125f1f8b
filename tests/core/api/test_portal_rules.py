"""The www / bare-domain pair end to end through the signing RPC: in the certificate's
SANs at no extra charge when the bare domain is validated, and the answer's notice when
it is not."""

from __future__ import annotations

from cryptography import x509

from tests.conftest import Service, client, csr, paying_org


def sans(pem: str) -> list[str]:
    cert = x509.load_pem_x509_certificate(pem.encode())
    return cert.extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    ).value.get_values_for_type(x509.DNSName)


def test_the_pair_in_a_certificate_and_the_notice_without_it(service: Service) -> None:
    base, ca, _ = service
    admin = client(base, ca, "admin")
    paying_org(admin, "acme")  # example.co.jp validated by DNS
    rpc = client(base, ca, "rpc", "acme")
    body = {"csr": csr("www.example.co.jp"), "profile": "ov", "organization": "acme"}
    paired = rpc.post("/v1/certificates", json=body)
    assert paired.status_code == 201, paired.text
    assert sans(paired.json()["certificate"]) == ["www.example.co.jp", "example.co.jp"]
    assert paired.json()["notice"] is None
    single = rpc.post("/v1/certificates", json={**body, "csr": csr("shop.example.co.jp")})
    # The pair costs what a single name costs.
    assert paired.json()["charged"] == single.json()["charged"]

    # www of another domain validated by a file only: that covers www alone.
    r = admin.post(
        "/v1/admin/organizations/acme/domains",
        json={"domain": "www.example.jp", "method": "http-file"},
    )
    assert r.status_code == 201, r.text
    alone = rpc.post(
        "/v1/certificates",
        json={"csr": csr("www.example.jp"), "profile": "ov", "organization": "acme"},
    )
    assert alone.status_code == 201, alone.text
    assert sans(alone.json()["certificate"]) == ["www.example.jp"]
    assert alone.json()["notice"].startswith("example.jp was not added")
