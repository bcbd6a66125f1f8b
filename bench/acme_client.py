"""The ACME client `hanko bench acme` drives both servers with: one code path, trio and
httpx, ES256 account keys, External Account Binding, and complete orders (newOrder,
its authorizations, a challenge where one is pending, finalize, polling, download)."""

from __future__ import annotations

import hashlib
import hmac
import json
import ssl
import time
from typing import Any

import httpx
import trio
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509 import (
    CertificateSigningRequestBuilder,
    DNSName,
    Name,
    NameAttribute,
    SubjectAlternativeName,
)
from cryptography.x509.oid import NameOID

from core.acme.jws import b64encode, canonical_jwk

# Between polls of an authorization or an order still processing: 5 ms, then half as
# long again each time up to 250 ms, as clients back off (lego does); polling at a
# fixed 5 ms made every millisecond a validation takes cost both sides a signed request.
POLL = 0.005
POLL_GROWTH = 1.5
MAX_POLL = 0.25
MAX_POLLS = 2000


class AcmeError(Exception):
    pass


class Account:
    """One ACME account: its key, its kid once registered, its last nonce."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        directory: dict[str, Any],
        name: str,
        *,
        key: ec.EllipticCurvePrivateKey | None = None,
    ) -> None:
        self.http = http
        self.directory = directory
        self.key = key or ec.generate_private_key(ec.SECP256R1())
        self.jwk = canonical_jwk(self.key.public_key())
        self.kid: str | None = None
        self.nonce: str | None = None
        self._csr_key = ec.generate_private_key(ec.SECP256R1())
        self.name = name
        self.csr = self._csr_for(name)

    def _csr_for(self, name: str) -> str:
        return b64encode(
            CertificateSigningRequestBuilder()
            .subject_name(Name([NameAttribute(NameOID.COMMON_NAME, name)]))
            .add_extension(SubjectAlternativeName([DNSName(name)]), critical=False)
            .sign(self._csr_key, hashes.SHA256())
            .public_bytes(serialization.Encoding.DER)
        )

    def _sign(self, header: dict[str, Any], payload: bytes) -> bytes:
        protected = b64encode(json.dumps(header).encode())
        body = b64encode(payload) if payload else ""
        der = self.key.sign(f"{protected}.{body}".encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        sig = b64encode(r.to_bytes(32, "big") + s.to_bytes(32, "big"))
        return json.dumps({"protected": protected, "payload": body, "signature": sig}).encode()

    async def post(self, url: str, payload: Any = None) -> httpx.Response:
        """A signed POST (None: POST-as-GET), once more after a badNonce."""
        raw = b"" if payload is None else json.dumps(payload).encode()
        for _ in range(2):
            if self.nonce is None:
                r = await self.http.head(self.directory["newNonce"])
                self.nonce = r.headers["replay-nonce"]
            header: dict[str, Any] = {"alg": "ES256", "nonce": self.nonce, "url": url}
            if self.kid is None:
                header["jwk"] = self.jwk
            else:
                header["kid"] = self.kid
            r = await self.http.post(
                url,
                content=self._sign(header, raw),
                headers={"Content-Type": "application/jose+json"},
            )
            self.nonce = r.headers.get("replay-nonce")
            if r.status_code < 400:
                return r
            if "badNonce" not in r.text:
                raise AcmeError(f"{url}: {r.status_code} {r.text[:300]}")
        raise AcmeError(f"{url}: badNonce twice")

    async def register(self, kid: str, mac_key: bytes) -> None:
        url = self.directory["newAccount"]
        protected = b64encode(json.dumps({"alg": "HS256", "kid": kid, "url": url}).encode())
        payload = b64encode(json.dumps(self.jwk).encode())
        mac = hmac.new(mac_key, f"{protected}.{payload}".encode(), hashlib.sha256).digest()
        eab = {"protected": protected, "payload": payload, "signature": b64encode(mac)}
        r = await self.post(url, {"termsOfServiceAgreed": True, "externalAccountBinding": eab})
        self.kid = r.headers["location"]

    async def order(self, name: str | None = None) -> float:
        """One complete order (for `name`, else the account's own name); its seconds."""
        started = time.perf_counter()
        csr = self.csr if name is None else self._csr_for(name)
        r = await self.post(
            self.directory["newOrder"],
            {"identifiers": [{"type": "dns", "value": name or self.name}]},
        )
        order_url, order = r.headers["location"], r.json()
        for authz_url in order["authorizations"]:
            authz = (await self.post(authz_url)).json()
            if authz["status"] == "pending":
                challenge = next(c for c in authz["challenges"] if c["type"] == "http-01")
                await self.post(challenge["url"], {})
                delay = POLL
                for _ in range(MAX_POLLS):
                    authz = (await self.post(authz_url)).json()
                    if authz["status"] != "pending":
                        break
                    await trio.sleep(delay)
                    delay = min(delay * POLL_GROWTH, MAX_POLL)
            if authz["status"] != "valid":
                raise AcmeError(f"authorization {authz_url} is {authz['status']}")
        order = (await self.post(order["finalize"], {"csr": csr})).json()
        delay = POLL
        for _ in range(MAX_POLLS):
            if order["status"] == "valid":
                break
            if order["status"] == "invalid":
                raise AcmeError(f"order {order_url} is invalid")
            await trio.sleep(delay)
            delay = min(delay * POLL_GROWTH, MAX_POLL)
            order = (await self.post(order_url)).json()
        pem = (await self.post(order["certificate"])).text
        if "BEGIN CERTIFICATE" not in pem:
            raise AcmeError("no certificate downloaded")
        return time.perf_counter() - started


async def connect(directory_url: str, ca_file: str) -> tuple[httpx.AsyncClient, dict[str, Any]]:
    http = httpx.AsyncClient(
        verify=ssl.create_default_context(cafile=ca_file),
        timeout=60,
        limits=httpx.Limits(max_connections=None, max_keepalive_connections=None),
    )
    directory = (await http.get(directory_url)).json()
    return http, directory
