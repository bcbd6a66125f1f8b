"""The one outbound address policy, through a real DNS server on loopback and real HTTP
receivers: ACME http-01 and webhook delivery refuse every address form that reaches
the CA's own network (the private ranges and the IPv6 forms that embed or translate
IPv4), say so without quoting what the resolver answered, and connect only to the
address they checked (a name that answers otherwise on a second lookup is never
connected to: DNS rebinding)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
import trio

from core.acme.validation import Validator
from core.base.netaddr import refusal
from core.dns.resolver import DnsSettings, Resolver
from core.notify.delivery import post_event
from tests.dns_server import DnsServer

# An address of each kind, as a name could resolve to it: none may be connected to.
HOSTILE = {
    "nat64": ("AAAA", "64:ff9b::a14:1e28"),  # 10.20.30.40 through a NAT64 gateway
    "nat64-local": ("AAAA", "64:ff9b:1::a9fe:a9fe"),
    "sixtofour": ("AAAA", "2002:a14:1e28::1"),  # 6to4 of 10.20.30.40
    "teredo": ("AAAA", "2001:0:4136:e378:8000:63bf:f5eb:e1d7"),
    "sitelocal": ("AAAA", "fec0::1"),
    "mapped": ("AAAA", "::ffff:10.20.30.40"),
    "compatible": ("AAAA", "::a14:1e28"),
    "ula": ("AAAA", "fd00::1"),
    "ten": ("A", "10.20.30.40"),
    "oneninetwo": ("A", "192.168.1.1"),
    "oneseventwo": ("A", "172.16.0.1"),
    "loopback": ("A", "127.0.0.1"),
    "metadata": ("A", "169.254.169.254"),
    "cgnat": ("A", "100.64.0.1"),
}


@pytest.fixture(scope="module")
def dns() -> Iterator[DnsServer]:
    server = DnsServer()
    for label, (rdtype, address) in HOSTILE.items():
        server.set(f"{label}.hostile.test", rdtype, [address])
    yield server
    server.close()


class Receiver:
    """An HTTP server on one loopback address that counts what reached it."""

    def __init__(self, host: str, body: bytes = b"", port: int = 0) -> None:
        self.hits = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits += 1
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                outer.hits += 1
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.port = int(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def resolver(dns: DnsServer) -> Resolver:
    return Resolver(DnsSettings(server=dns.address, timeout=3, retries=1))


def test_the_policy_names_the_kind_of_range() -> None:
    for _label, (_, address) in HOSTILE.items():
        assert refusal(address) is not None, address
    assert refusal("93.184.216.34") is None
    assert refusal("2606:4700::1111") is None
    assert refusal("64:ff9b::a14:1e28") == "NAT64"
    assert refusal("2002:a14:1e28::1") == "6to4"
    assert refusal("fec0::1") == "site-local"


@pytest.mark.parametrize("label", sorted(HOSTILE))
def test_http01_refuses_every_hostile_address(dns: DnsServer, label: str) -> None:
    name = f"{label}.hostile.test"
    validator = Validator(resolver=resolver(dns), http_port=80, allow_private=False, timeout=3)
    error = trio.run(validator.http01, name, "token", "token.thumb")
    assert error is not None
    assert "no address the CA may connect to" in error
    # What the CA's resolver answered is not for the client to read.
    assert HOSTILE[label][1] not in error
    assert "10.20.30.40" not in error


@pytest.mark.parametrize("label", sorted(HOSTILE))
def test_webhooks_refuse_every_hostile_address(dns: DnsServer, label: str) -> None:
    async def post() -> str | None:
        async with httpx.AsyncClient() as client:
            return await post_event(
                client,
                resolver(dns),
                f"http://{label}.hostile.test/hook",
                b"{}",
                {"Content-Type": "application/json"},
                allow_private=False,
                timeout=3,
            )

    error = trio.run(post)
    assert error is not None
    assert "no address the CA may connect to" in error
    assert HOSTILE[label][1] not in error


def test_a_dns_failure_is_no_permission(dns: DnsServer) -> None:
    dns.set("broken.hostile.test", "A", "SERVFAIL")
    validator = Validator(resolver=resolver(dns), allow_private=True, timeout=3)
    error = trio.run(validator.http01, "broken.hostile.test", "t", "t.k")
    assert error is not None
    assert "failed" in error


def test_http01_connects_to_the_address_it_checked(dns: DnsServer) -> None:
    """The name answers 127.0.0.2 first, then 127.0.0.3: a validator that looked it up
    again to connect would reach 127.0.0.3. It asks once, and only .2 is reached."""
    good = Receiver("127.0.0.2", b"tok.thumb")
    other = Receiver("127.0.0.3", b"tok.thumb", port=good.port)
    try:
        name = "rebind.hostile.test"
        dns.sequence(name, "A", [["127.0.0.2"], ["127.0.0.3"]])
        dns.set(name, "AAAA", [])
        before = dns.asked[(name, "A")]
        validator = Validator(
            resolver=resolver(dns), http_port=good.port, allow_private=True, timeout=3
        )
        assert trio.run(validator.http01, name, "tok", "tok.thumb") is None
        assert good.hits == 1
        assert other.hits == 0
        assert dns.asked[(name, "A")] - before == 1
    finally:
        good.close()
        other.close()


def test_webhooks_connect_to_the_address_they_checked(dns: DnsServer) -> None:
    good = Receiver("127.0.0.2")
    try:
        name = "hook-rebind.hostile.test"
        # Second answer: a NAT64 form the policy refuses even with the lab switch on.
        dns.sequence(name, "A", [["127.0.0.2"], ["127.0.0.9"]])
        dns.sequence(name, "AAAA", [[], ["64:ff9b::7f00:9"]])
        before = dns.asked[(name, "A")]

        async def post() -> str | None:
            async with httpx.AsyncClient() as client:
                return await post_event(
                    client,
                    resolver(dns),
                    f"http://{name}:{good.port}/hook",
                    b"{}",
                    {"Content-Type": "application/json"},
                    allow_private=True,
                    timeout=3,
                )

        assert trio.run(post) is None
        assert good.hits == 1
        assert dns.asked[(name, "A")] - before == 1
    finally:
        good.close()
