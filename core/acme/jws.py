"""JSON Web Signatures as ACME uses them (RFC 8555 6.2, RFC 7515, RFC 7638): the
flattened serialization, the algorithms clients use (ES256, ES384, RS256), JWK public
keys and their thumbprints, and the MAC of External Account Binding (HS256).

Pure: bytes in, a verified header and payload out, or a Problem. msgspec decodes the
structures once per request; cryptography verifies.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import Any

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from core.acme.problems import Problem

PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey

_CURVES: dict[str, tuple[ec.EllipticCurve, int, str]] = {
    "P-256": (ec.SECP256R1(), 32, "ES256"),
    "P-384": (ec.SECP384R1(), 48, "ES384"),
}
_ALGORITHMS: dict[str, hashes.HashAlgorithm] = {
    "ES256": hashes.SHA256(),
    "ES384": hashes.SHA384(),
    "RS256": hashes.SHA256(),
}
_MACS = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}
MIN_RSA_BITS = 2048


class Flattened(msgspec.Struct, forbid_unknown_fields=True):
    protected: str
    payload: str
    signature: str


class Protected(msgspec.Struct):
    alg: str
    url: str | None = None
    nonce: str | None = None
    jwk: dict[str, Any] | None = None
    kid: str | None = None


_FLAT = msgspec.json.Decoder(Flattened)
_PROTECTED = msgspec.json.Decoder(Protected)


def b64decode(text: str) -> bytes:
    """base64url without padding (RFC 7515 2); anything else is malformed."""
    if "=" in text or "+" in text or "/" in text:
        raise Problem("malformed", "base64url must have no padding and no + or /")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise Problem("malformed", "invalid base64url") from None


def b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _uint(jwk: dict[str, Any], name: str) -> int:
    value = jwk.get(name)
    if not isinstance(value, str) or not value:
        raise Problem("malformed", f"the JWK lacks {name!r}")
    return int.from_bytes(b64decode(value), "big")


def public_key(jwk: dict[str, Any]) -> PublicKey:
    """The key a JWK holds: EC P-256 or P-384, or RSA of 2048 bits or more."""
    kty = jwk.get("kty")
    if kty == "EC":
        curve = _CURVES.get(str(jwk.get("crv")))
        if curve is None:
            raise Problem("badPublicKey", "EC keys must be on P-256 or P-384")
        try:
            return ec.EllipticCurvePublicNumbers(
                _uint(jwk, "x"), _uint(jwk, "y"), curve[0]
            ).public_key()
        except ValueError:
            raise Problem("badPublicKey", "the EC point is not on its curve") from None
    if kty == "RSA":
        try:
            key = rsa.RSAPublicNumbers(_uint(jwk, "e"), _uint(jwk, "n")).public_key()
        except ValueError:
            raise Problem("badPublicKey", "not a valid RSA public key") from None
        if key.key_size < MIN_RSA_BITS:
            raise Problem("badPublicKey", f"RSA keys need {MIN_RSA_BITS} bits or more")
        return key
    raise Problem("badPublicKey", f"unsupported key type {kty!r}")


def thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638: SHA-256 over the required members in lexicographic order, base64url."""
    kty = jwk.get("kty")
    if kty == "EC":
        members = {"crv": jwk.get("crv"), "kty": "EC", "x": jwk.get("x"), "y": jwk.get("y")}
    elif kty == "RSA":
        members = {"e": jwk.get("e"), "kty": "RSA", "n": jwk.get("n")}
    else:
        raise Problem("badPublicKey", f"unsupported key type {kty!r}")
    canonical = msgspec.json.encode(members)  # keys already in order, no whitespace
    return b64encode(hashlib.sha256(canonical).digest())


def canonical_jwk(key: PublicKey) -> dict[str, Any]:
    """The JWK of a public key, with only its required members."""
    if isinstance(key, ec.EllipticCurvePublicKey):
        size = (key.curve.key_size + 7) // 8
        numbers = key.public_numbers()
        crv = "P-256" if isinstance(key.curve, ec.SECP256R1) else "P-384"
        return {
            "crv": crv,
            "kty": "EC",
            "x": b64encode(numbers.x.to_bytes(size, "big")),
            "y": b64encode(numbers.y.to_bytes(size, "big")),
        }
    rn = key.public_numbers()
    return {
        "e": b64encode(rn.e.to_bytes((rn.e.bit_length() + 7) // 8, "big")),
        "kty": "RSA",
        "n": b64encode(rn.n.to_bytes((rn.n.bit_length() + 7) // 8, "big")),
    }


def verify(key: PublicKey, alg: str, signing_input: bytes, signature: bytes) -> None:
    """Problem badSignatureAlgorithm or malformed unless `signature` is `key`'s over
    `signing_input` by `alg`."""
    digest = _ALGORITHMS.get(alg)
    if digest is None:
        raise Problem("badSignatureAlgorithm", f"{alg} is not accepted (ES256, ES384, RS256)")
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            size = (key.curve.key_size + 7) // 8
            if alg != _CURVES["P-256" if size == 32 else "P-384"][2]:
                raise Problem("badSignatureAlgorithm", f"{alg} does not fit this EC key")
            if len(signature) != 2 * size:
                raise Problem("malformed", "the JWS signature has the wrong length")
            der = encode_dss_signature(
                int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big")
            )
            key.verify(der, signing_input, ec.ECDSA(digest))
        else:
            if alg != "RS256":
                raise Problem("badSignatureAlgorithm", f"{alg} does not fit an RSA key")
            key.verify(signature, signing_input, padding.PKCS1v15(), digest)
    except InvalidSignature:
        raise Problem("malformed", "the JWS signature does not verify") from None


class Jws(msgspec.Struct, frozen=True):
    """A parsed, not yet verified, flattened JWS."""

    header: Protected
    payload: bytes  # b"" for POST-as-GET
    signing_input: bytes
    signature: bytes


def parse(body: bytes) -> Jws:
    try:
        flat = _FLAT.decode(body)
        protected_raw = b64decode(flat.protected)
        header = _PROTECTED.decode(protected_raw)
    except msgspec.DecodeError as exc:
        raise Problem("malformed", f"not a flattened JWS: {exc}") from None
    if header.alg == "none" or header.alg in _MACS:
        raise Problem("badSignatureAlgorithm", f"{header.alg} is not accepted here")
    return Jws(
        header=header,
        payload=b64decode(flat.payload) if flat.payload else b"",
        signing_input=f"{flat.protected}.{flat.payload}".encode(),
        signature=b64decode(flat.signature),
    )


def verify_mac(raw: Any, key: bytes, *, url: str) -> tuple[str, bytes]:
    """External Account Binding (RFC 8555 7.3.4): the inner JWS, MACed with the EAB key.
    Its `url` must be newAccount's. The (kid, payload) it carries."""
    try:
        flat = msgspec.convert(raw, Flattened)
        header = _PROTECTED.decode(b64decode(flat.protected))
    except (msgspec.ValidationError, msgspec.DecodeError):
        raise Problem("malformed", "externalAccountBinding is not a flattened JWS") from None
    mac = _MACS.get(header.alg)
    if mac is None:
        raise Problem("malformed", "externalAccountBinding must be MACed (HS256)")
    if header.nonce is not None or header.kid is None or header.url != url:
        raise Problem("malformed", "externalAccountBinding: kid and url only, no nonce")
    expected = hmac.new(key, f"{flat.protected}.{flat.payload}".encode(), mac).digest()
    if not hmac.compare_digest(expected, b64decode(flat.signature)):
        raise Problem("unauthorized", "the external account binding MAC does not verify")
    return header.kid, b64decode(flat.payload)


def eab_kid(raw: Any) -> str:
    """The kid an EAB JWS names, before its key is known (to look the key up)."""
    try:
        flat = msgspec.convert(raw, Flattened)
        header = _PROTECTED.decode(b64decode(flat.protected))
    except (msgspec.ValidationError, msgspec.DecodeError):
        raise Problem("malformed", "externalAccountBinding is not a flattened JWS") from None
    if not header.kid:
        raise Problem("malformed", "externalAccountBinding has no kid")
    return header.kid
