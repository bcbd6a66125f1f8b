"""Six remote perspectives for the module's tests (tests/mpic_lab.py), each with its
own Unbound view of the lab's zones, a web site for http-01 and website-change, and
the records every kind of check looks for."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
import trio

from bench.dns_lab import DnsLab
from bench.perspectives import RIRS6, PerspectiveLab
from core.acme.validation import dns01_value
from core.mpic.messages import Check
from core.mpic.quorum import Verdict
from tests.conftest import CAA_IDENTITY, DevCA, free_port, init_ca

KEY_AUTH = "token-1.thumbprint"
RANDOM = "q7a2m4zq3v5xk2n7d6w1c8y0u9t4s3r2"


class _Site(http.server.BaseHTTPRequestHandler):
    pages: ClassVar[dict[str, bytes]] = {}

    def do_GET(self) -> None:
        body = self.pages.get(self.path)
        self.send_response(200 if body is not None else 404)
        body = body or b"not here"
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


class World:
    def __init__(self, ca: DevCA, lab: DnsLab, remotes: PerspectiveLab, port: int) -> None:
        self.ca = ca
        self.lab = lab
        self.remotes = remotes
        self.port = port  # the web site's (http-01 and website-change)

    def checks(self) -> list[Check]:
        return [
            Check(kind="caa", name="m.signed.jp"),
            Check(kind="dns-01", name="m.signed.jp", expect=KEY_AUTH),
            Check(
                kind="http-01",
                name="web.signed.jp",
                token="token-1",
                expect=KEY_AUTH,
                port=self.port,
            ),
            Check(
                kind="dns-change",
                name="m.signed.jp",
                record="_validation-hanko.m.signed.jp",
                expect=RANDOM,
            ),
            Check(
                kind="website-change",
                name="web.signed.jp",
                expect=RANDOM,
                port=self.port,
                url=f"http://web.signed.jp:{self.port}/.well-known/pki-validation/hanko-x.txt",
            ),
        ]

    def ask(
        self,
        codes: list[str] | None = None,
        *,
        timeout: float = 3.0,
        required: int = 5,
        checks: list[Check] | None = None,
    ) -> list[Verdict]:
        corroborator = self.remotes.corroborator(codes, timeout=timeout, required=required)

        async def run() -> list[Verdict]:
            try:
                return await corroborator.corroborate(
                    checks or self.checks(), caa_identities=[CAA_IDENTITY]
                )
            finally:
                await corroborator.aclose()

        return trio.run(run)


@pytest.fixture(scope="module")
def world(lab: DnsLab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    ca = init_ca(tmp_path_factory.mktemp("mpic") / "ca")
    port = free_port()
    _Site.pages = {
        "/.well-known/acme-challenge/token-1": KEY_AUTH.encode(),
        "/.well-known/pki-validation/hanko-x.txt": RANDOM.encode(),
    }
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), _Site)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    lab.add(
        "signed.jp",
        [
            f'_acme-challenge.m.signed.jp. IN TXT "{dns01_value(KEY_AUTH)}"',
            f'_validation-hanko.m.signed.jp. IN TXT "{RANDOM}"',
            "web.signed.jp. IN A 127.0.0.1",
        ],
    )
    remotes = PerspectiveLab(
        ca.config_path, ca.directory.parent / "perspectives", RIRS6, lab.view
    ).start()
    try:
        yield World(ca, lab, remotes, port)
    finally:
        remotes.stop()
        server.shutdown()
        server.server_close()


@pytest.fixture
def w(world: World) -> Iterator[World]:
    try:
        yield world
    finally:
        world.remotes.restore()


def hijack_all_kinds(w: World, code: str) -> None:
    """This perspective's resolver answers otherwise for every check's names."""
    w.remotes.remotes[code].view.hijack(
        [
            'm.signed.jp. 1 IN CAA 0 issue "another-ca.example"',
            '_acme-challenge.m.signed.jp. 1 IN TXT "another-value"',
            '_validation-hanko.m.signed.jp. 1 IN TXT "another-random-value"',
            "web.signed.jp. 1 IN A 127.0.0.9",
        ]
    )
