"""A Certificate Transparency log of the tests' own (no real log server installs here):
a real HTTP/1.1 server on loopback that answers RFC 6962 `add-pre-chain` and
`add-chain` with SCTs signed by its own ECDSA P-256 key over the RFC 6962 3.2
structure, as Boulder's ct-test-srv does. It checks what a log checks cheaply: a
pre-chain's first certificate carries the poison and an ordinary chain's does not,
and the second certificate is the one that issued the first by name. Modes for the
failure tests: `slow` answers after `delay` seconds, `error` answers 500, `wrong_key`
signs with a key other than the one it publishes.

It runs on an event loop of its own in a thread (uvloop, httptools), so it keeps up
with a benchmark: `python -m tests.ct_log --operator NAME` serves one log in a
process of its own and prints its url, key and operator as a JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import functools
import json
import signal
import socket
import sys
import threading
import time
from typing import Any

import httptools
import uvloop
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from core.base.der import read_tlv
from core.ct.precert import without_poison
from core.ct.sct import ECDSA, SHA256, Sct, issuer_key_hash, log_id, signed_data

SPKI = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
_POISON_OID = bytes.fromhex("060a2b06010401d679020403")
ENDPOINTS = {b"/ct/v1/add-pre-chain": "add-pre-chain", b"/ct/v1/add-chain": "add-chain"}


class TestLog:
    __test__ = False  # not a test class, whatever pytest thinks of the name

    def __init__(
        self,
        operator: str,
        *,
        mode: str = "ok",
        delay: float = 30.0,
        keep: bool = True,
        port: int = 0,
    ) -> None:
        """`keep`: record every submission in `submissions` (off for benchmarks)."""
        self.operator = operator
        self.mode = mode
        self.delay = delay
        self.keep = keep
        self._key = ec.generate_private_key(ec.SECP256R1())
        published = ec.generate_private_key(ec.SECP256R1()) if mode == "wrong_key" else self._key
        self.key_der = published.public_key().public_bytes(*SPKI)
        self._own_id = log_id(self._key.public_key().public_bytes(*SPKI))
        self.submissions: list[tuple[str, list[bytes]]] = []
        self.answered = 0
        self.connections = 0  # accepted so far
        self._open: set[_Connection] = set()
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", port))
        self._sock.listen(1024)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._loop = uvloop.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True, name=f"ct-log-{operator}")
        self._thread.start()
        self._started.wait(10)

    @property
    def key_b64(self) -> str:
        return base64.b64encode(self.key_der).decode()

    def drop_connections(self) -> None:
        """Close every open connection, as a server's idle timeout would."""

        def drop() -> None:
            for conn in list(self._open):
                conn.abort()

        self._loop.call_soon_threadsafe(drop)
        time.sleep(0.1)

    def close(self) -> None:
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._sock.close()

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            self._loop.create_server(lambda: _Connection(self), sock=self._sock)
        )
        self._loop.call_soon(self._started.set)
        try:
            self._loop.run_forever()
        finally:
            server.close()

    def sct(self, kind: str, chain: list[bytes]) -> dict[str, Any]:
        """The SCT answer for a submitted chain (leaf or precertificate first);
        ValueError when the chain is not one this log takes."""
        if len(chain) < 2:
            raise ValueError("the chain needs the certificate and its issuer")
        tbs, issuer_name = _tbs_and_issuer(chain[0])
        subject, key_hash = _issuer(chain[1])
        if issuer_name != subject:
            raise ValueError("the second certificate did not issue the first")
        timestamp = int(time.time() * 1000)
        unsigned = Sct(
            version=0,
            log_id=self._own_id,
            timestamp=timestamp,
            extensions=b"",
            hash_algorithm=SHA256,
            signature_algorithm=ECDSA,
            signature=b"",
        )
        if kind == "add-pre-chain":
            # ValueError when there is no poison
            data = signed_data(unsigned, tbs=without_poison(tbs), issuer_key_hash=key_hash)
        else:
            if _POISON_OID in tbs:
                raise ValueError("a precertificate goes to add-pre-chain")
            data = signed_data(unsigned, leaf=chain[0])
        signature = self._key.sign(data, ec.ECDSA(hashes.SHA256()))
        signed = bytes((SHA256, ECDSA)) + len(signature).to_bytes(2, "big") + signature
        return {
            "sct_version": 0,
            "id": base64.b64encode(self._own_id).decode(),
            "timestamp": timestamp,
            "extensions": "",
            "signature": base64.b64encode(signed).decode(),
        }

    def answer(self, path: bytes, body: bytes) -> tuple[int, bytes]:
        kind = ENDPOINTS.get(path)
        if kind is None:
            return 404, b'{"error": "no such endpoint"}'
        try:
            chain = [base64.b64decode(c, validate=True) for c in json.loads(body)["chain"]]
        except (ValueError, KeyError, TypeError):
            return 400, b'{"error": "bad chain"}'
        if self.keep:
            self.submissions.append((kind, chain))
        if self.mode == "error":
            return 500, b'{"error": "internal"}'
        try:
            answer = self.sct(kind, chain)
        except ValueError as exc:
            return 400, json.dumps({"error": str(exc)}).encode()
        self.answered += 1
        return 200, json.dumps(answer).encode()


def _tbs_and_issuer(der: bytes) -> tuple[bytes, bytes]:
    """A certificate's TBSCertificate and its issuer Name, DER (ValueError if it is not
    one): read with the DER walker, as cheaply as a log must to keep up."""
    _, start, _ = read_tlv(der)
    _, t_start, t_end = read_tlv(der, start)
    pos = t_start
    fields = []
    while pos < t_end and len(fields) < 4:
        _, _, end = read_tlv(der, pos)
        fields.append(der[pos:end])
        pos = end
    if len(fields) < 4 or fields[0][:1] != b"\xa0":
        raise ValueError("not a version 3 certificate")
    return der[start:t_end], fields[3]  # version, serial, signature, issuer


@functools.lru_cache(maxsize=16)
def _issuer(der: bytes) -> tuple[bytes, bytes]:
    """An issuing certificate's subject Name DER and key hash (RFC 6962 issuer_key_hash)."""
    cert = x509.load_der_x509_certificate(der)
    return cert.subject.public_bytes(), issuer_key_hash(cert.public_key().public_bytes(*SPKI))


class _Connection(asyncio.Protocol):
    def __init__(self, log: TestLog) -> None:
        self._log = log
        self._parser = httptools.HttpRequestParser(self)
        self._url = b""
        self._body: list[bytes] = []
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop's is no subclass
        self._log.connections += 1
        self._log._open.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._log._open.discard(self)

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            self._reply(400, b'{"error": "not HTTP/1.1"}', keep=False)

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        path, body = self._url, b"".join(self._body)
        self._url, self._body = b"", []
        keep = self._parser.should_keep_alive()
        if self._parser.get_method() != b"POST":
            self._reply(405, b'{"error": "POST only"}', keep=keep)
            return
        status, answer = self._log.answer(path, body)
        if self._log.mode == "slow":
            asyncio.get_running_loop().call_later(
                self._log.delay, self._reply, status, answer, keep
            )
        else:
            self._reply(status, answer, keep)

    def _reply(self, status: int, body: bytes, keep: bool) -> None:
        t = self._transport
        if t is None or t.is_closing():
            return
        reason = {200: b"OK", 400: b"Bad Request", 404: b"Not Found", 405: b"Method Not Allowed"}
        t.write(
            b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n%s"
            % (
                status,
                reason.get(status, b"Internal Server Error"),
                len(body),
                b"" if keep else b"Connection: close\r\n",
                body,
            )
        )
        if not keep:
            t.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--operator", required=True)
    parser.add_argument("--mode", default="ok", choices=("ok", "slow", "error", "wrong_key"))
    parser.add_argument("--delay", type=float, default=30.0)
    args = parser.parse_args()
    log = TestLog(args.operator, mode=args.mode, delay=args.delay, keep=False)
    print(json.dumps({"url": log.url, "key": log.key_b64, "operator": log.operator}), flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    # Also stop when the parent goes away (its end of stdin closes).
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    while not stop.wait(0.5):
        pass
    log.close()
    print(json.dumps({"answered": log.answered}), flush=True)


if __name__ == "__main__":
    main()
