"""CAA on every issuance route of a real `hanko serve`, its resolver the lab's Unbound
(validating, in front of NSD): the RPC (one request, and a batch where one item is
refused and the others issued), the CLI, ACME finalize (with RFC 8657 accounturi and
validationmethods through the `acme` library and a real http-01 fetch). A refusal
names the record and where it was; a failed lookup is a retryable 503; neither
charges or signs anything. Each decision is in the audit log with the certificate."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from acme import challenges, errors, messages

from bench.dns_lab import DnsLab
from core.store import LmdbStore
from tests.conftest import (
    CAA_IDENTITY,
    DevCA,
    Service,
    client,
    csr,
    free_port,
    hanko,
    keyed,
    new_key,
    paying_org,
    serving,
)
from tests.core.api.test_acme import Acme, make_eab

FORBIDS = 'IN CAA 0 issue "other-ca.example"'


def books(admin: httpx.Client, account: str = "acme") -> tuple[int, int]:
    """(ledger entries, certificates) of the account."""
    ledger = admin.get(f"/v1/admin/accounts/{account}/ledger").json()
    certs = admin.get(f"/v1/admin/accounts/{account}/certificates").json()
    return len(ledger["entries"]), len(certs["certificates"])


def audit(ca: DevCA, action: str) -> list[tuple[str, dict[str, str]]]:
    with (
        LmdbStore(ca.config.path(ca.config.store.path), readonly=True) as store,
        store.read() as txn,
    ):
        return [(e.subject, e.detail) for e in txn.iter_audit() if e.action == action]


def test_the_rpc_refuses_a_forbidden_name_and_issues_the_rest(
    service: Service, lab: DnsLab
) -> None:
    base, ca, _ = service
    lab.add(
        "signed.jp",
        [f"rpc.signed.jp. {FORBIDS}", 'rpc.signed.jp. IN CAA 0 iodef "mailto:x@signed.jp"'],
    )
    admin = client(base, ca, "admin")
    paying_org(admin, "acme", domain="signed.jp")
    rpc = keyed(base, ca, new_key(base, ca, "issuer", "acme")["secret"])
    item = {"profile": "ov", "organization": "acme"}
    before = books(admin)

    r = rpc.post("/v1/certificates", json={**item, "csr": csr("www.rpc.signed.jp")})
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["error"] == "caa_forbidden"
    assert body["name"] == "www.rpc.signed.jp"
    assert body["found_at"] == "rpc.signed.jp"
    assert '0 issue "other-ca.example"' in body["records"]
    assert "other-ca.example" in body["detail"]
    assert books(admin) == before  # nothing charged, nothing issued

    batch = [
        {**item, "csr": csr("a.signed.jp")},
        {**item, "csr": csr("b.rpc.signed.jp")},
        {**item, "csr": csr("c.signed.jp")},
    ]
    r = rpc.post("/v1/certificates:batch", json={"requests": batch})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert results[0]["result"]["serial"]
    assert results[2]["result"]["serial"]
    refused = results[1]["error"]
    assert (refused["error"], refused["name"], refused["found_at"]) == (
        "caa_forbidden",
        "b.rpc.signed.jp",
        "rpc.signed.jp",
    )
    ledger, certificates = books(admin)
    assert (ledger - before[0], certificates - before[1]) == (2, 2)

    # Each name's decision is in the audit log with its certificate.
    serial = results[0]["result"]["serial"]
    [detail] = [d for s, d in audit(ca, "caa.check") if s == serial]
    assert detail["names"] == "a.signed.jp"
    assert detail["permitted"] == "yes"
    assert detail["found_at"] == "signed.jp"
    assert detail["records"] == f'0 issue "{CAA_IDENTITY}"'
    assert detail["dnssec"] == "validated"
    assert detail["checked_at"].startswith("20")


def test_a_failed_lookup_is_a_retryable_503_that_changes_nothing(
    service: Service, lab: DnsLab
) -> None:
    base, ca, _ = service
    admin = client(base, ca, "admin")
    paying_org(admin, "acme", domain="bogus.jp")
    rpc = keyed(base, ca, new_key(base, ca, "issuer", "acme")["secret"])
    before = books(admin)
    r = rpc.post(
        "/v1/certificates",
        json={"profile": "ov", "organization": "acme", "csr": csr("www.bogus.jp")},
    )
    assert r.status_code == 503, r.text
    assert r.headers["retry-after"]
    body = r.json()
    assert body["error"] == "caa_lookup_failed"
    assert "bogus.jp" in body["detail"]
    assert "SERVFAIL" in body["detail"]
    assert "127.0.0.1" not in r.text  # nothing of the CA's resolver
    assert books(admin) == before
    assert audit(ca, "caa.check") == []


def test_the_cli_refuses_in_one_line(fresh_ca: DevCA, lab: DnsLab, tmp_path: Path) -> None:
    lab.add("signed.jp", [f"cli.signed.jp. {FORBIDS}"])
    cfg = str(fresh_ca.config_path)
    for args in (
        ("licenses", "create-account", "-c", cfg, "acme", "--name", "Acme"),
        ("licenses", "buy", "-c", cfg, "acme", "acme-pool", "--kind", "pooled",
         "--quantity", "10", "--years", "1"),
        ("org", "create", "-c", cfg, "--id", "acme", "--level", "ov", "--account", "acme",
         "--name", "Acme K.K.", "--country", "JP", "--state", "Tokyo-to",
         "--locality", "Chiyoda-ku"),
        ("domain", "validate", "-c", cfg, "--org", "acme", "--domain", "signed.jp"),
    ):  # fmt: skip
        out = hanko(*args)
        assert out.returncode == 0, out.stderr
    request = tmp_path / "r.csr"
    request.write_text(csr("www.cli.signed.jp"))
    out = hanko("issue", "-c", cfg, "--csr", str(request), "--profile", "ov",
                "--organization", "acme")  # fmt: skip
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert "www.cli.signed.jp" in lines[0]
    assert '0 issue "other-ca.example"' in lines[0]
    assert "Traceback" not in out.stderr
    with (
        LmdbStore(fresh_ca.config.path(fresh_ca.config.store.path), readonly=True) as store,
        store.read() as txn,
    ):
        assert list(txn.iter_account_certs("acme")) == []


class _Tokens(http.server.BaseHTTPRequestHandler):
    answers: ClassVar[dict[str, str]] = {}

    def do_GET(self) -> None:
        body = self.answers.get(self.path)
        self.send_response(200 if body else 404)
        self.end_headers()
        if body:
            self.wfile.write(body.encode())

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def http01() -> Iterator[tuple[int, dict[str, str]]]:
    """An HTTP server on loopback answering http-01 tokens from a dict."""
    port = free_port()
    answers: dict[str, str] = {}
    handler = type("Handler", (_Tokens,), {"answers": answers})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield port, answers
    finally:
        server.shutdown()
        server.server_close()


def _by_http01(acme: Acme, name: str, answers: dict[str, str]) -> messages.OrderResource:
    order = acme.client.new_order(csr(name).encode())
    for authz in order.authorizations:
        if authz.body.status.name == "valid":
            continue
        [chall] = [c for c in authz.body.challenges if isinstance(c.chall, challenges.HTTP01)]
        response, validation = chall.response_and_validation(acme.key)
        answers[chall.chall.path] = validation
        acme.client.answer_challenge(chall, response)
    return order


def test_acme_finalize_honours_caa_and_rfc_8657(
    fresh_ca: DevCA, lab: DnsLab, http01: tuple[int, dict[str, str]]
) -> None:
    port, answers = http01
    allow = f"{CAA_IDENTITY}; accounturi="
    methods = f"{CAA_IDENTITY}; validationmethods="
    lab.add(
        "signed.jp",
        [
            *(f"{n}.acme.signed.jp. IN A 127.0.0.1" for n in ("mine", "web", "http", "no")),
            f"no.acme.signed.jp. {FORBIDS}",
            f'web.acme.signed.jp. IN CAA 0 issue "{methods}dns-01"',
            f'http.acme.signed.jp. IN CAA 0 issue "{methods}http-01"',
        ],
    )
    setup = {
        "replace": [
            ('eab_secret = { file = "secrets/acme-eab.secret" }',
             'eab_secret = { file = "secrets/acme-eab.secret" }\n'
             f"http01_port = {port}\nallow_private_targets = true"),
        ]
    }  # fmt: skip
    with serving(fresh_ca, setup) as (base, ca, _):
        admin = client(base, ca, "admin")
        paying_org(admin, "acme", domain="example.co.jp")
        mine, theirs = Acme(base, ca), Acme(base, ca)
        me = mine.register(make_eab(base, ca))
        theirs.register(make_eab(base, ca))

        # accounturi: the record names my account; the other account is refused.
        lab.add("signed.jp", [f'mine.acme.signed.jp. IN CAA 0 issue "{allow}{me.uri}"'])
        order = _by_http01(mine, "mine.acme.signed.jp", answers)
        assert mine.client.poll_and_finalize(order).body.status.name == "valid"
        order = _by_http01(theirs, "mine.acme.signed.jp", answers)
        with pytest.raises(errors.Error) as refused:
            theirs.client.poll_and_finalize(order)
        assert refused.value.typ == "urn:ietf:params:acme:error:caa"
        assert "mine.acme.signed.jp" in str(refused.value)

        # validationmethods: http-01 validated web.*, whose record allows dns-01 only.
        order = _by_http01(mine, "web.acme.signed.jp", answers)
        with pytest.raises(errors.Error) as refused:
            mine.client.poll_and_finalize(order)
        assert refused.value.typ == "urn:ietf:params:acme:error:caa"
        order = _by_http01(mine, "http.acme.signed.jp", answers)
        assert mine.client.poll_and_finalize(order).body.status.name == "valid"

        # A plain forbidding record.
        order = _by_http01(mine, "no.acme.signed.jp", answers)
        with pytest.raises(errors.Error) as refused:
            mine.client.poll_and_finalize(order)
        assert refused.value.typ == "urn:ietf:params:acme:error:caa"
        assert "other-ca.example" in str(refused.value)

        # The refused orders stay ready (nothing issued), the issued two are in the store.
        issued = [s for s, d in audit(ca, "caa.check") if d["permitted"] == "yes"]
        assert len(issued) == 2
        matched = {d["names"]: d["matched"] for _, d in audit(ca, "caa.check")}
        assert f"accounturi={me.uri}" in matched["mine.acme.signed.jp"]


def test_hanko_caa_check(dev_ca: DevCA, lab: DnsLab) -> None:
    lab.add("signed.jp", [f"support.signed.jp. {FORBIDS}"])
    cfg = str(dev_ca.config_path)
    out = hanko("caa", "check", "-c", cfg, "--domain", "www.signed.jp")
    assert out.returncode == 0, out.stderr
    assert "permitted" in out.stdout
    assert f'0 issue "{CAA_IDENTITY}"' in out.stdout
    out = hanko("caa", "check", "-c", cfg, "--domain", "www.support.signed.jp", "--json")
    assert out.returncode == 1
    decision = json.loads(out.stdout)
    assert (decision["permitted"], decision["found_at"]) == (False, "support.signed.jp")
    assert decision["records"] == ['0 issue "other-ca.example"']
    out = hanko("caa", "check", "-c", cfg, "--domain", "x.bogus.jp")
    assert out.returncode == 1
    assert "could not be checked" in out.stdout
    out = hanko("caa", "check", "-c", cfg, "--domain", "no such name")
    assert out.returncode != 0
    assert len(out.stderr.strip().splitlines()) == 1
