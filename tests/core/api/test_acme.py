"""ACME against `hanko serve`, driven by the `acme` library (certbot's) and by requests
crafted here to be wrong: an order for pre-validated names, renewal information, key
change, deactivation, and the refusals, each of which leaves the store unchanged."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import josepy as jose
import pytest
from acme import client as acme_client
from acme import jws as acme_jws
from acme import messages
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from core.acme import jws
from core.acme.renewal import cert_id
from core.store import LmdbStore
from tests.conftest import DevCA, Service, client, csr, lint, openssl_verify, paying_org, tls

OV_POLICY = "2.23.140.1.2.2"


def make_eab(base: str, ca: DevCA, account: str = "acme") -> dict[str, Any]:
    r = client(base, ca, "admin").post(
        "/v1/acme/eab", json={"account": account, "organization": account, "profile": "ov"}
    )
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created


class Acme:
    """An ACME client (the `acme` library) with an account key of its own."""

    def __init__(self, base: str, ca: DevCA) -> None:
        self.base = base
        self.raw = ec.generate_private_key(ec.SECP256R1())
        self.key = jose.JWKEC(key=self.raw)
        self.net = acme_client.ClientNetwork(
            self.key, alg=jose.ES256, user_agent="hanko-tests",
            verify_ssl=str(ca.directory / "tls" / "internal-ca.pem"),
        )  # fmt: skip
        self.directory = acme_client.ClientV2.get_directory(f"{base}/acme/directory", self.net)
        self.client = acme_client.ClientV2(self.directory, self.net)
        self.account: messages.RegistrationResource | None = None

    def register(self, eab: dict[str, Any]) -> messages.RegistrationResource:
        binding = messages.ExternalAccountBinding.from_data(
            account_public_key=self.key.public_key(), kid=eab["kid"],
            hmac_key=eab["hmac_key"], directory=self.directory,
        )  # fmt: skip
        self.account = self.client.new_account(
            messages.NewRegistration.from_data(
                terms_of_service_agreed=True, external_account_binding=binding
            )
        )
        return self.account

    def certificate(self, *names: str) -> messages.OrderResource:
        order = self.client.new_order(csr(*names).encode())
        return self.client.poll_and_finalize(order)


def acme_state(ca: DevCA) -> tuple[list[tuple[str, str, str]], int]:
    """The audit entries of ACME's doing, and the certificates, as the store has them."""
    with (
        LmdbStore(ca.config.path(ca.config.store.path), readonly=True) as store,
        store.read() as txn,
    ):
        audit = [(e.actor, e.action, e.subject) for e in txn.iter_audit()
                 if e.actor.startswith("acme") or e.action.startswith("acme.")]  # fmt: skip
        return audit, store.stat()["certs"]


def sign(key: ec.EllipticCurvePrivateKey, header: dict[str, Any], payload: bytes) -> bytes:
    protected = jws.b64encode(json.dumps({"alg": "ES256", **header}).encode())
    body = jws.b64encode(payload) if payload else ""
    r, s = decode_dss_signature(key.sign(f"{protected}.{body}".encode(), ec.ECDSA(hashes.SHA256())))
    sig = jws.b64encode(r.to_bytes(32, "big") + s.to_bytes(32, "big"))
    return json.dumps({"protected": protected, "payload": body, "signature": sig}).encode()


def raw_post(base: str, ca: DevCA, path: str, body: bytes) -> httpx.Response:
    return httpx.post(
        f"{base}{path}", content=body, verify=tls(ca), timeout=30,
        headers={"Content-Type": "application/jose+json"},
    )  # fmt: skip


def nonce(base: str, ca: DevCA) -> str:
    return httpx.head(f"{base}/acme/new-nonce", verify=tls(ca), timeout=10).headers["replay-nonce"]


def test_a_prevalidated_name_is_issued_without_a_challenge(
    service: Service, tmp_path: Path
) -> None:
    base, ca, _ = service
    paying_org(client(base, ca, "admin"), "acme")
    acme = Acme(base, ca)
    assert acme.register(make_eab(base, ca)).body.status == "valid"
    order = acme.client.new_order(csr("www.example.co.jp", "example.co.jp").encode())
    assert [a.body.status.name for a in order.authorizations] == ["valid", "valid"]
    order = acme.client.poll_and_finalize(order)
    assert order.body.status.name == "valid"
    leaf = x509.load_pem_x509_certificates(order.fullchain_pem.encode())[0]
    path = tmp_path / "leaf.pem"
    path.write_bytes(leaf.public_bytes(jws_encoding()))
    openssl_verify(ca.directory / "ca", path)
    policies = leaf.extensions.get_extension_for_class(x509.CertificatePolicies).value
    assert OV_POLICY in {p.policy_identifier.dotted_string for p in policies}
    assert lint(path, "OV-FINAL-CERTIFICATE") == []
    audit, _ = acme_state(ca)
    assert any(actor.startswith("acme:") and action == "issue" for actor, action, _ in audit)

    # Renewal information: the acme library's own ARI client, and the window itself.
    when, _ = acme.client.renewal_time(order.fullchain_pem.encode())
    assert when is not None
    assert leaf.not_valid_after_utc.timestamp() - 90 * 86400 <= when.timestamp()
    assert when < leaf.not_valid_after_utc
    info = httpx.get(f"{base}/acme/renewal-info/{cert_id(leaf)}", verify=tls(ca), timeout=10)
    assert info.headers["retry-after"] == "21600"


def jws_encoding() -> Any:
    from cryptography.hazmat.primitives.serialization import Encoding

    return Encoding.PEM


def test_key_change_and_deactivation(service: Service) -> None:
    base, ca, _ = service
    paying_org(client(base, ca, "admin"), "acme")
    acme = Acme(base, ca)
    account = acme.register(make_eab(base, ca))
    new_key = jose.JWKEC(key=ec.generate_private_key(ec.SECP256R1()))
    url = acme.directory["keyChange"]
    old = acme.key.public_key().to_partial_json()
    inner = acme_jws.JWS.sign(
        json.dumps({"account": account.uri, "oldKey": old}).encode(),
        key=new_key, alg=jose.ES256, nonce=None, url=url,
    )  # fmt: skip
    acme.net.post(url, inner, new_nonce_url=acme.directory["newNonce"])
    # The old key no longer signs for the account; the new one does.
    with pytest.raises(messages.Error) as err:
        acme.certificate("old.example.co.jp")
    assert err.value.typ == "urn:ietf:params:acme:error:malformed"
    acme.net.key = new_key
    assert acme.certificate("new.example.co.jp").body.status.name == "valid"
    # Deactivated, it can do nothing more.
    acme.client.deactivate_registration(account)
    with pytest.raises(messages.Error) as err:
        acme.client.new_order(csr("after.example.co.jp").encode())
    assert err.value.typ == "urn:ietf:params:acme:error:unauthorized"


def test_refusals_leave_the_store_unchanged(service: Service) -> None:
    base, ca, _ = service
    admin = client(base, ca, "admin")
    paying_org(admin, "acme")
    paying_org(admin, "kanto", domain="kanto.co.jp")
    acme = Acme(base, ca)
    eab = make_eab(base, ca)
    account = acme.register(eab)
    key = acme.raw
    order_payload = json.dumps({"identifiers": [{"type": "dns", "value": "x.example.co.jp"}]})
    before = acme_state(ca)

    def refused(body: bytes, kind: str, path: str = "/acme/new-order") -> None:
        r = raw_post(base, ca, path, body)
        assert r.headers["content-type"] == "application/problem+json", r.text
        assert r.json()["type"] == f"urn:ietf:params:acme:error:{kind}", r.text
        assert r.json()["status"] == r.status_code
        assert "replay-nonce" in r.headers
        assert acme_state(ca) == before, kind

    url = f"{base}/acme/new-order"
    header = {"kid": account.uri, "url": url}
    # A bad JWS signature: signed by another key than the account's.
    other = ec.generate_private_key(ec.SECP256R1())
    refused(sign(other, {**header, "nonce": nonce(base, ca)}, order_payload.encode()), "malformed")
    # A reused nonce.
    used = nonce(base, ca)
    body = sign(key, {**header, "nonce": used}, b"")
    assert raw_post(base, ca, "/acme/acct/" + account.uri.rsplit("/", 1)[1],
                    sign(key, {"kid": account.uri, "url": account.uri, "nonce": used}, b"")
                    ).status_code == 200  # fmt: skip
    before = acme_state(ca)
    refused(body, "badNonce")
    # The url of another resource.
    refused(sign(key, {**header, "url": f"{base}/acme/new-account", "nonce": nonce(base, ca)},
                 order_payload.encode()), "unauthorized")  # fmt: skip
    # A name under another organization's validated domain.
    kanto = json.dumps({"identifiers": [{"type": "dns", "value": "www.kanto.co.jp"}]}).encode()
    refused(sign(key, {**header, "nonce": nonce(base, ca)}, kanto), "rejectedIdentifier")

    # newAccount: a wrong EAB MAC, then a credential already bound.
    fresh = Acme(base, ca)
    wrong = dict(make_eab(base, ca))
    wrong["hmac_key"] = jws.b64encode(b"\0" * 32)
    before = acme_state(ca)
    with pytest.raises(messages.Error) as err:
        fresh.register(wrong)
    assert err.value.typ == "urn:ietf:params:acme:error:unauthorized"
    assert acme_state(ca) == before
    with pytest.raises(messages.Error) as err:
        Acme(base, ca).register(eab)
    assert err.value.typ == "urn:ietf:params:acme:error:unauthorized"
    assert "bound" in (err.value.detail or "")
    assert acme_state(ca) == before
    assert acme.client.new_order(csr("www.example.co.jp").encode()).body.status.name == "ready"


def test_an_exhausted_licence_is_unauthorized_and_charges_nothing(service: Service) -> None:
    base, ca, _ = service
    admin = client(base, ca, "admin")
    r = admin.post("/v1/admin/accounts", json={"id": "tiny", "name": "Tiny K.K."})
    assert r.status_code == 201
    r = admin.post("/v1/admin/accounts/tiny/licenses",
                   json={"id": "one", "kind": "non_pooled", "quantity": 1})  # fmt: skip
    assert r.status_code == 201
    org = {"id": "tiny", "account": "tiny", "level": "ov", "organization": "Tiny K.K.",
           "country": "JP", "state": "Tokyo-to", "locality": "Minato-ku"}  # fmt: skip
    assert admin.post("/v1/admin/organizations", json=org).status_code == 201
    r = admin.post("/v1/admin/organizations/tiny/domains",
                   json={"domain": "tiny.co.jp", "method": "dns-txt"})  # fmt: skip
    assert r.status_code == 201
    acme = Acme(base, ca)
    acme.register(make_eab(base, ca, "tiny"))
    assert acme.certificate("a.tiny.co.jp").body.status.name == "valid"
    ledger = admin.get("/v1/admin/accounts/tiny/ledger").json()
    _, certs = acme_state(ca)
    with pytest.raises(messages.Error) as err:
        acme.certificate("b.tiny.co.jp")
    assert err.value.typ == "urn:ietf:params:acme:error:unauthorized"
    assert "license_exhausted" in (err.value.detail or "")
    assert admin.get("/v1/admin/accounts/tiny/ledger").json() == ledger
    assert acme_state(ca)[1] == certs


def test_account_and_order_edges(service: Service) -> None:
    base, ca, _ = service
    paying_org(client(base, ca, "admin"), "acme")
    acme = Acme(base, ca)
    eab = make_eab(base, ca)
    before = acme_state(ca)
    for contact, kind in (
        ("tel:+81312345678", "unsupportedContact"),
        ("mailto:nobody", "invalidContact"),
    ):
        binding = messages.ExternalAccountBinding.from_data(
            account_public_key=acme.key.public_key(), kid=eab["kid"],
            hmac_key=eab["hmac_key"], directory=acme.directory,
        )  # fmt: skip
        with pytest.raises(messages.Error) as err:
            acme.client.new_account(messages.NewRegistration.from_data(
                contact=(contact,), terms_of_service_agreed=True,
                external_account_binding=binding,
            ))  # fmt: skip
        assert err.value.typ == f"urn:ietf:params:acme:error:{kind}"
    assert acme_state(ca) == before
    account = acme.register(eab)

    # onlyReturnExisting: the account of a known key; none for an unknown one.
    key = acme.raw
    url = acme.directory["newAccount"]
    found = raw_post(base, ca, "/acme/new-account", sign(
        key, {"jwk": jws.canonical_jwk(key.public_key()), "url": url, "nonce": nonce(base, ca)},
        b'{"onlyReturnExisting": true}'))  # fmt: skip
    assert (found.status_code, found.headers["location"]) == (200, account.uri)
    stranger = ec.generate_private_key(ec.SECP256R1())
    missing = raw_post(base, ca, "/acme/new-account", sign(
        stranger, {"jwk": jws.canonical_jwk(stranger.public_key()), "url": url,
                   "nonce": nonce(base, ca)}, b'{"onlyReturnExisting": true}'))  # fmt: skip
    assert missing.json()["type"] == "urn:ietf:params:acme:error:accountDoesNotExist"

    # notBefore/notAfter are the profile's to decide.
    order_url = acme.directory["newOrder"]
    dated = json.dumps({"identifiers": [{"type": "dns", "value": "www.example.co.jp"}],
                        "notAfter": "2027-01-01T00:00:00Z"}).encode()  # fmt: skip
    kid = {"kid": account.uri}
    r = raw_post(base, ca, "/acme/new-order",
                 sign(key, {**kid, "url": order_url, "nonce": nonce(base, ca)}, dated))  # fmt: skip
    assert r.json()["type"] == "urn:ietf:params:acme:error:malformed"

    # A deactivated authorization fails its order; finalize is refused.
    order = acme.client.new_order(csr("www.example.co.jp").encode())
    authz_url = order.body.authorizations[0]
    body = b'{"status": "deactivated"}'
    r = raw_post(base, ca, authz_url.removeprefix(base),
                 sign(key, {**kid, "url": authz_url, "nonce": nonce(base, ca)}, body))  # fmt: skip
    assert (r.status_code, r.json()["status"]) == (200, "deactivated"), r.text
    _, certs = acme_state(ca)
    with pytest.raises(messages.Error) as err:
        acme.client.begin_finalization(order)
    assert err.value.typ == "urn:ietf:params:acme:error:orderNotReady"
    assert acme_state(ca)[1] == certs
    listed = acme.net.post(f"{account.uri}/orders", None,
                           new_nonce_url=acme.directory["newNonce"]).json()["orders"]  # fmt: skip
    assert order.uri not in listed  # invalid now


def test_revocation_by_the_certificate_key_and_renewal_by_replaces(service: Service) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.x509.oid import NameOID

    base, ca, _ = service
    admin = client(base, ca, "admin")
    paying_org(admin, "acme")
    acme = Acme(base, ca)
    acme.register(make_eab(base, ca))
    cert_key = ec.generate_private_key(ec.SECP256R1())
    request = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "k.example.co.jp")]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("k.example.co.jp")]), False)
        .sign(cert_key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
    )
    order = acme.client.poll_and_finalize(acme.client.new_order(request))
    leaf = x509.load_pem_x509_certificates(order.fullchain_pem.encode())[0]
    der = leaf.public_bytes(serialization.Encoding.DER)

    # replaces makes the order a renewal under hanko's rules: not 90 days before expiry.
    url = acme.directory["newOrder"]
    body = json.dumps({"identifiers": [{"type": "dns", "value": "k.example.co.jp"}],
                       "replaces": cert_id(leaf)}).encode()  # fmt: skip
    assert acme.account is not None
    kid = acme.account.uri
    header = {"kid": kid, "url": url, "nonce": nonce(base, ca)}
    r = raw_post(base, ca, "/acme/new-order", sign(acme.raw, header, body))
    assert r.status_code == 201, r.text
    assert r.json()["replaces"] == cert_id(leaf)
    finalize = r.json()["finalize"]
    csr_b64 = jws.b64encode(
        x509.load_pem_x509_csr(request).public_bytes(serialization.Encoding.DER)
    )
    r = raw_post(base, ca, finalize.removeprefix(base), sign(
        acme.raw, {"kid": acme.account.uri, "url": finalize, "nonce": nonce(base, ca)},
        json.dumps({"csr": csr_b64}).encode()))  # fmt: skip
    assert r.json()["type"] == "urn:ietf:params:acme:error:unauthorized", r.text
    assert "renewal_too_early" in r.json()["detail"]

    # Revoked by a request signed with the certificate's own key (no account).
    revoke = acme.directory["revokeCert"]
    payload = json.dumps({"certificate": jws.b64encode(der), "reason": 1}).encode()
    stranger = ec.generate_private_key(ec.SECP256R1())
    for key, status in ((stranger, 403), (cert_key, 200)):
        header = {"jwk": jws.canonical_jwk(key.public_key()), "url": revoke,
                  "nonce": nonce(base, ca)}  # fmt: skip
        r = raw_post(base, ca, "/acme/revoke-cert", sign(key, header, payload))
        assert r.status_code == status, r.text
    view = admin.get(f"/v1/certificates/{leaf.serial_number:x}").json()
    assert (view["status"], view["reason"]) == ("revoked", "keyCompromise")
    header = {"jwk": jws.canonical_jwk(cert_key.public_key()), "url": revoke,
              "nonce": nonce(base, ca)}  # fmt: skip
    again = raw_post(base, ca, "/acme/revoke-cert", sign(cert_key, header, payload))
    assert again.json()["type"] == "urn:ietf:params:acme:error:alreadyRevoked"
