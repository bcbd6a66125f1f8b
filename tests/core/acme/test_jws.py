"""JWS as ACME uses it, against signatures made by cryptography and by josepy (the
library certbot signs with): what verifies, and what is refused with which problem."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import josepy as jose
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from core.acme import jws
from core.acme.problems import Problem

URL = "https://ca.example/acme/new-order"


def flattened(key: Any, alg: str, header: dict[str, Any], payload: bytes) -> bytes:
    protected = jws.b64encode(json.dumps({"alg": alg, **header}).encode())
    body = jws.b64encode(payload)
    signing_input = f"{protected}.{body}".encode()
    if isinstance(key, ec.EllipticCurvePrivateKey):
        digest = hashes.SHA256() if alg == "ES256" else hashes.SHA384()
        r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(digest)))
        size = (key.curve.key_size + 7) // 8
        sig = r.to_bytes(size, "big") + s.to_bytes(size, "big")
    else:
        sig = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    return json.dumps(
        {"protected": protected, "payload": body, "signature": jws.b64encode(sig)}
    ).encode()


def check(body: bytes) -> jws.Jws:
    parsed = jws.parse(body)
    assert parsed.header.jwk is not None
    jws.verify(jws.public_key(parsed.header.jwk), parsed.header.alg, parsed.signing_input,
               parsed.signature)  # fmt: skip
    return parsed


@pytest.mark.parametrize(
    ("key", "alg"),
    [
        (ec.generate_private_key(ec.SECP256R1()), "ES256"),
        (ec.generate_private_key(ec.SECP384R1()), "ES384"),
        (rsa.generate_private_key(65537, 2048), "RS256"),
    ],
)
def test_each_algorithm_verifies_and_a_changed_byte_does_not(key: Any, alg: str) -> None:
    jwk = jws.canonical_jwk(key.public_key())
    body = flattened(key, alg, {"jwk": jwk, "nonce": "n", "url": URL}, b'{"a": 1}')
    assert check(body).payload == b'{"a": 1}'
    tampered = json.loads(body)
    tampered["payload"] = jws.b64encode(b'{"a": 2}')
    with pytest.raises(Problem) as err:
        check(json.dumps(tampered).encode())
    assert err.value.kind == "malformed"


def test_josepy_signatures_verify_and_thumbprints_agree() -> None:
    key = jose.JWKEC(key=ec.generate_private_key(ec.SECP256R1()))
    signed = jose.JWS.sign(b"{}", key=key, alg=jose.ES256, include_jwk=True,
                           protect=frozenset(["alg", "jwk"]))  # fmt: skip
    flat = signed.to_partial_json(flat=True)
    body = json.dumps({k: flat[k] for k in ("protected", "payload", "signature")}).encode()
    parsed = check(body)
    assert parsed.header.jwk is not None
    assert jws.thumbprint(parsed.header.jwk) == jws.b64encode(key.thumbprint(hashes.SHA256))


def test_rfc_7638_thumbprint_example() -> None:
    # RFC 7638 3.1
    jwk = {
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6"
        "tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65Y"
        "GjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-"
        "bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29",
    }
    assert jws.thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


@pytest.mark.parametrize(
    ("change", "kind"),
    [
        ({"alg": "none"}, "badSignatureAlgorithm"),
        ({"alg": "HS256"}, "badSignatureAlgorithm"),
        ({"alg": "ES384"}, "badSignatureAlgorithm"),  # does not fit a P-256 key
        ({"alg": "PS256"}, "badSignatureAlgorithm"),
    ],
)
def test_algorithms_that_are_refused(change: dict[str, str], kind: str) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    jwk = jws.canonical_jwk(key.public_key())
    body = json.loads(flattened(key, "ES256", {"jwk": jwk, "nonce": "n", "url": URL}, b"{}"))
    header = json.loads(jws.b64decode(body["protected"]))
    body["protected"] = jws.b64encode(json.dumps({**header, **change}).encode())
    with pytest.raises(Problem) as err:
        check(json.dumps(body).encode())
    assert err.value.kind == kind


def test_weak_and_unknown_keys_are_bad_public_keys() -> None:
    small = jws.canonical_jwk(rsa.generate_private_key(65537, 1024).public_key())  # noqa: S505 - refused on purpose
    for jwk in (small, {"kty": "OKP", "crv": "Ed25519", "x": "AA"}, {"kty": "EC", "crv": "P-521"}):
        with pytest.raises(Problem) as err:
            jws.public_key(jwk)
        assert err.value.kind == "badPublicKey"
    with pytest.raises(Problem):
        jws.b64decode("padded==")


def test_eab_mac_binds_the_account_key_to_the_kid() -> None:
    key = b"k" * 32
    account_jwk = jws.canonical_jwk(ec.generate_private_key(ec.SECP256R1()).public_key())
    protected = jws.b64encode(json.dumps({"alg": "HS256", "kid": "eab_1", "url": URL}).encode())
    payload = jws.b64encode(json.dumps(account_jwk).encode())
    mac = hmac.new(key, f"{protected}.{payload}".encode(), hashlib.sha256).digest()
    raw = {"protected": protected, "payload": payload, "signature": jws.b64encode(mac)}
    assert jws.eab_kid(raw) == "eab_1"
    kid, bound = jws.verify_mac(raw, key, url=URL)
    assert (kid, json.loads(bound)) == ("eab_1", account_jwk)
    with pytest.raises(Problem) as err:
        jws.verify_mac(raw, b"x" * 32, url=URL)
    assert err.value.kind == "unauthorized"
    with pytest.raises(Problem) as err:
        jws.verify_mac(raw, key, url=URL + "x")
    assert err.value.kind == "malformed"
