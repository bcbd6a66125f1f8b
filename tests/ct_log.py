"""A Certificate Transparency log of the tests' own (no real log server installs here):
a real HTTP server on loopback that answers RFC 6962 `add-pre-chain` and `add-chain`
with SCTs signed by its own ECDSA P-256 key over the RFC 6962 3.2 structure, as
Boulder's ct-test-srv does. Modes for the failure tests: `slow` answers after `delay`
seconds, `error` answers 500, `wrong_key` signs with a key other than the one it
publishes."""

from __future__ import annotations

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from core.ct.precert import without_poison
from core.ct.sct import ECDSA, SHA256, Sct, issuer_key_hash, log_id, signed_data

SPKI = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


class TestLog:
    __test__ = False  # not a test class, whatever pytest thinks of the name

    def __init__(self, operator: str, *, mode: str = "ok", delay: float = 30.0) -> None:
        self.operator = operator
        self.mode = mode
        self.delay = delay
        self._key = ec.generate_private_key(ec.SECP256R1())
        published = ec.generate_private_key(ec.SECP256R1()) if mode == "wrong_key" else self._key
        self.key_der = published.public_key().public_bytes(*SPKI)
        self.submissions: list[tuple[str, list[bytes]]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def key_b64(self) -> str:
        return base64.b64encode(self.key_der).decode()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def sct(self, kind: str, chain: list[bytes]) -> dict[str, Any]:
        """The SCT answer for a submitted chain (leaf or precertificate first)."""
        timestamp = int(time.time() * 1000)
        own_id = log_id(self._key.public_key().public_bytes(*SPKI))
        unsigned = Sct(
            version=0,
            log_id=own_id,
            timestamp=timestamp,
            extensions=b"",
            hash_algorithm=SHA256,
            signature_algorithm=ECDSA,
            signature=b"",
        )
        leaf = x509.load_der_x509_certificate(chain[0])
        if kind == "add-pre-chain":
            issuer = x509.load_der_x509_certificate(chain[1])
            data = signed_data(
                unsigned,
                tbs=without_poison(leaf.tbs_certificate_bytes),
                issuer_key_hash=issuer_key_hash(issuer.public_key().public_bytes(*SPKI)),
            )
        else:
            data = signed_data(unsigned, leaf=chain[0])
        signature = self._key.sign(data, ec.ECDSA(hashes.SHA256()))
        signed = bytes((SHA256, ECDSA)) + len(signature).to_bytes(2, "big") + signature
        return {
            "sct_version": 0,
            "id": base64.b64encode(own_id).decode(),
            "timestamp": timestamp,
            "extensions": "",
            "signature": base64.b64encode(signed).decode(),
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        log = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                kind = self.path.rsplit("/", 1)[-1]
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.path not in ("/ct/v1/add-pre-chain", "/ct/v1/add-chain"):
                    return self._answer(404, b'{"error": "no such endpoint"}')
                try:
                    chain = [base64.b64decode(c) for c in json.loads(body)["chain"]]
                except (ValueError, KeyError, TypeError):
                    return self._answer(400, b'{"error": "bad chain"}')
                log.submissions.append((kind, chain))
                if log.mode == "error":
                    return self._answer(500, b'{"error": "internal"}')
                if log.mode == "slow":
                    time.sleep(log.delay)
                try:
                    answer = log.sct(kind, chain)
                except ValueError as exc:
                    return self._answer(400, json.dumps({"error": str(exc)}).encode())
                return self._answer(200, json.dumps(answer).encode())

            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        return Handler
