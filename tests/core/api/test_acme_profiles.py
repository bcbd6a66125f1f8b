"""ACME profiles (draft-ietf-acme-profiles) against `hanko serve`, driven by the `acme`
library (certbot's): the directory lists them, an order names one, a `shortlived`
certificate lives 7 days (BR 1.6.1) without an OCSP URL, and an unknown profile or one
the account may not use is `invalidProfile`, with nothing stored."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import httpx
import pytest
from acme import messages
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import AuthorityInformationAccessOID

from tests.conftest import Service, client, csr, lint, openssl_verify, paying_org, tls
from tests.core.api.test_acme import Acme, acme_state

PROFILES = """
[issuance.profiles.ov]
level = "ov"
www_pair = true

[issuance.profiles.shortlived]
level = "ov"
description = "7 days, no OCSP URL (BR 1.6.1); renew every few days"
max_days = 7
ocsp_url = false
"""


def eab(base: str, service: Service, *profiles: str) -> dict[str, str]:
    _, ca, _ = service
    r = client(base, ca, "admin").post(
        "/v1/acme/eab",
        json={"account": "acme", "organization": "acme", "profile": profiles[0],
              "profiles": list(profiles[1:])},
    )  # fmt: skip
    assert r.status_code == 201, r.text
    assert r.json()["credential"]["profiles"] == list(profiles)
    created: dict[str, str] = r.json()
    return created


def refused(acme: Acme, profile: str) -> messages.Error:
    with pytest.raises(messages.Error) as caught:
        acme.client.new_order(csr("www.example.co.jp").encode(), profile=profile)
    return caught.value


@pytest.mark.parametrize("service", [PROFILES], indirect=True)
def test_shortlived_by_profile_and_invalid_profiles(service: Service, tmp_path: Path) -> None:
    base, ca, _ = service
    paying_org(client(base, ca, "admin"), "acme")
    directory = httpx.get(f"{base}/acme/directory", verify=tls(ca)).json()
    assert directory["meta"]["profiles"] == {
        "ov": "OV certificates",
        "shortlived": "7 days, no OCSP URL (BR 1.6.1); renew every few days",
    }

    acme = Acme(base, ca)
    acme.register(eab(base, service, "ov", "shortlived"))
    order = acme.client.new_order(csr("www.example.co.jp").encode(), profile="shortlived")
    assert order.body.profile == "shortlived"
    order = acme.client.poll_and_finalize(order)
    assert order.body.profile == "shortlived"
    leaf = x509.load_pem_x509_certificates(order.fullchain_pem.encode())[0]
    lived = leaf.not_valid_after_utc - leaf.not_valid_before_utc + dt.timedelta(seconds=1)
    assert lived == dt.timedelta(days=7)
    aia = leaf.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    assert [d.access_method for d in aia] == [AuthorityInformationAccessOID.CA_ISSUERS]
    assert leaf.extensions.get_extension_for_class(x509.CRLDistributionPoints)
    path = tmp_path / "short.pem"
    path.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    openssl_verify(ca.directory / "ca", path)
    assert lint(path, "OV-FINAL-CERTIFICATE") == []

    # No profile named: the credential's default, at the BR's length.
    plain = acme.client.poll_and_finalize(acme.client.new_order(csr("shop.example.co.jp").encode()))
    assert plain.body.profile == "ov"
    long_leaf = x509.load_pem_x509_certificates(plain.fullchain_pem.encode())[0]
    assert long_leaf.not_valid_after_utc - long_leaf.not_valid_before_utc > dt.timedelta(days=100)

    before = acme_state(ca)
    unknown = refused(acme, "nosuch")
    assert acme_state(ca) == before
    assert unknown.typ == "urn:ietf:params:acme:error:invalidProfile"
    assert "nosuch" in str(unknown.detail)
    # An account whose credential names only "ov" may not ask for "shortlived".
    other = Acme(base, ca)
    other.register(eab(base, service, "ov"))
    before = acme_state(ca)
    denied = refused(other, "shortlived")
    assert denied.typ == "urn:ietf:params:acme:error:invalidProfile"
    assert acme_state(ca) == before
