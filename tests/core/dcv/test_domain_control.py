"""Domain validation hanko performs, end to end against real servers: dns-change
through the lab's Unbound and NSD (from the command line), website-change against an
HTTP server on loopback and email through a real SMTP server (aiosmtpd, STARTTLS and
AUTH) with the value returned (over the admin API). Each is refused on a wrong value,
on a value placed or returned for another domain, and once used; an expired
challenge is refused (the clock injected); nothing is recorded by a refusal. The
operator's attestation can be turned off."""

from __future__ import annotations

import datetime as dt
import email
import email.message
import email.policy
import http.server
import json
import re
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

import pytest
import trio
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from bench.dns_lab import DnsLab
from core.base.clock import FixedClock
from core.base.errors import LookupFailed, PolicyError
from core.cmd.wiring import store_writer
from core.dcv.mailer import Mailer, MailSettings
from core.dcv.service import DcvFailed, DcvSettings, DomainControl
from core.dns.resolver import DnsSettings, Resolver
from core.store import OrgRecord, WriteTxn
from core.store.configured import open_store
from tests.conftest import (
    DevCA,
    client,
    csr,
    free_port,
    hanko,
    keyed,
    new_key,
    paying_org,
    serving,
)

SMTP_USER, SMTP_PASSWORD = "hanko", "smtp-secret-for-tests"


def setup_org(cfg: str, domain: str = "example.co.jp") -> None:
    for args in (
        ("licenses", "create-account", "-c", cfg, "acme", "--name", "Acme"),
        ("licenses", "buy", "-c", cfg, "acme", "acme-pool", "--kind", "pooled",
         "--quantity", "10", "--years", "1"),
        ("org", "create", "-c", cfg, "--id", "acme", "--level", "ov", "--account", "acme",
         "--name", "Acme K.K.", "--country", "JP", "--state", "Tokyo-to",
         "--locality", "Chiyoda-ku"),
    ):  # fmt: skip
        out = hanko(*args)
        assert out.returncode == 0, out.stderr


def challenge(cfg: str, domain: str, method: str = "dns-change") -> dict[str, Any]:
    out = hanko("domain", "challenge", "-c", cfg, "--org", "acme", "--domain", domain,
                "--method", method, "--json")  # fmt: skip
    assert out.returncode == 0, out.stderr
    created: dict[str, Any] = json.loads(out.stdout)
    return created


def verify(cfg: str, challenge_id: str) -> tuple[int, str]:
    out = hanko("domain", "verify", "-c", cfg, "--org", "acme", "--challenge", challenge_id,
                "--json")  # fmt: skip
    return out.returncode, out.stdout if out.returncode == 0 else out.stderr


def domains(cfg: str) -> dict[str, str]:
    out = hanko("domain", "list", "-c", cfg, "--org", "acme", "--json")
    assert out.returncode == 0, out.stderr
    return {d["domain"]: d["method"] for d in json.loads(out.stdout)}


def test_dns_change_from_the_command_line(fresh_ca: DevCA, lab: DnsLab, tmp_path: Path) -> None:
    cfg = str(fresh_ca.config_path)
    setup_org(cfg)
    ch = challenge(cfg, "dnsc.signed.jp")
    assert {"id", "method", "domain", "random_value", "expires_at", "record_name"} <= set(ch)
    assert ch["record_name"] == "_validation-hanko.dnsc.signed.jp"
    other = challenge(cfg, "dnsd.signed.jp")

    code, err = verify(cfg, ch["id"])
    assert code == 1
    assert err.strip() == (
        "hanko: error: dnsc.signed.jp: no TXT record at _validation-hanko.dnsc.signed.jp"
    )
    # The value of another domain's challenge, placed here, proves nothing.
    lab.add("signed.jp", [f'{ch["record_name"]}. IN TXT "{other["random_value"]}"'])
    code, err = verify(cfg, ch["id"])
    assert code == 1
    assert "holds the random value" in err
    assert "dnsc.signed.jp" not in domains(cfg)

    lab.add("signed.jp", [f'{ch["record_name"]}. IN TXT "{ch["random_value"]}"'])
    code, out = verify(cfg, ch["id"])
    assert code == 0, out
    done = json.loads(out)
    assert (done["domain"], done["method"], done["challenge"]) == (
        "dnsc.signed.jp",
        "dns-change",
        ch["id"],
    )
    assert done["evidence"]["record_name"] == "_validation-hanko.dnsc.signed.jp"
    assert done["evidence"]["dnssec"] == "validated"
    assert ch["random_value"] in done["evidence"]["values_seen"]
    assert domains(cfg)["dnsc.signed.jp"] == "dns-change"
    code, err = verify(cfg, ch["id"])
    assert code == 1
    assert "already used" in err

    # The validation covers the names under the domain: a certificate for one issues.
    request = tmp_path / "r.csr"
    request.write_text(csr("www.dnsc.signed.jp"))
    out_issue = hanko("issue", "-c", cfg, "--csr", str(request), "--profile", "ov",
                      "--organization", "acme")  # fmt: skip
    assert out_issue.returncode == 0, out_issue.stderr


def test_expired_spent_and_fail_closed_in_process(
    fresh_ca: DevCA,
    lab: DnsLab,
    site: tuple[int, dict[str, tuple[int, dict[str, str], bytes]]],
    smtp: tuple[int, _Mailbox],
) -> None:
    """In process, on the CA's own store, the lab's resolver, a website and an SMTP
    server, with a clock to move: each method's challenge is refused once expired even
    with its value in place; ten failed checks spend one; a bogus DNSSEC answer is a
    lookup failure, not a pass; without the lab switch a loopback site is no target."""
    port, pages = site
    smtp_port, box = smtp
    cfg = fresh_ca.config
    clock = FixedClock(dt.datetime(2026, 12, 4, 9, 0, tzinfo=dt.UTC))
    org = OrgRecord(id="acme", level="ov", organization="Acme K.K.", country="JP",
                    state="Tokyo-to", locality="Chiyoda-ku", validated_at=0)  # fmt: skip
    lab.add("signed.jp", ["expweb.signed.jp. IN A 127.0.0.1"])
    resolver = Resolver(DnsSettings(server=lab.resolver, timeout=3, retries=1))
    ca_file = str(fresh_ca.directory / "tls" / "internal-ca.pem")
    mailer = Mailer(MailSettings(host="127.0.0.1", port=smtp_port, security="starttls",
                                 sender="dcv@pki.hanko.example.com", user=SMTP_USER,
                                 password=SMTP_PASSWORD, ca_file=ca_file))  # fmt: skip

    async def run() -> None:
        store = open_store(cfg)
        writer = store_writer(cfg, store)
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(writer.run)
                await writer.submit(lambda t: _put_org(t, org))

                def control(allow_private: bool) -> DomainControl:
                    settings = DcvSettings(http_port=port, allow_private=allow_private, timeout=5)
                    return DomainControl(store=store, writer=writer, resolver=resolver,
                                         clock=clock, settings=settings, mailer=mailer)  # fmt: skip

                dcv = control(allow_private=True)
                dns = await dcv.challenge("acme", "exp.signed.jp", "dns-change", actor="t")
                lab.add("signed.jp", [f'{dns.record_name}. IN TXT "{dns.random_value}"'])
                web = await dcv.challenge("acme", "expweb.signed.jp", "website-change", actor="t")
                pages[urlsplit(web.url).path] = (200, {}, web.random_value.encode())
                mail = await dcv.challenge("acme", "expmail.signed.jp", "email", actor="t")
                assert mail.random_value in _text(box.messages[-1][1])
                clock.advance(dt.timedelta(days=30))
                for ch, value in ((dns, None), (web, None), (mail, mail.random_value)):
                    with pytest.raises(PolicyError, match="expired"):
                        await dcv.verify("acme", ch.id, actor="t", value=value)

                # Ten failed checks spend a challenge, even before its value appears.
                spent = await dcv.challenge("acme", "spent.signed.jp", "dns-change", actor="t")
                for attempt in range(10):
                    with pytest.raises(DcvFailed) as failed:
                        await dcv.verify("acme", spent.id, actor="t")
                    assert failed.value.attempts == attempt + 1
                lab.add("signed.jp", [f'{spent.record_name}. IN TXT "{spent.random_value}"'])
                with pytest.raises(PolicyError, match="spent"):
                    await dcv.verify("acme", spent.id, actor="t")

                # A bogus DNSSEC answer: a lookup failure (503), never a pass.
                bogus = await dcv.challenge("acme", "bogus.jp", "dns-change", actor="t")
                lab.add("bogus.jp", [f'{bogus.record_name}. IN TXT "{bogus.random_value}"'])
                with pytest.raises(LookupFailed) as failure:
                    await dcv.verify("acme", bogus.id, actor="t")
                assert failure.value.code == "dns_lookup_failed"

                # Without the lab switch, a site on a loopback address is no target.
                strict = control(allow_private=False)
                web2 = await strict.challenge("acme", "expweb.signed.jp", "website-change",
                                              actor="t")  # fmt: skip
                pages[urlsplit(web2.url).path] = (200, {}, web2.random_value.encode())
                with pytest.raises(DcvFailed, match="no address the CA may connect to"):
                    await strict.verify("acme", web2.id, actor="t")

                with store.read() as txn:
                    assert list(txn.iter_domains("acme")) == []
                nursery.cancel_scope.cancel()
        finally:
            store.close()

    trio.run(run)


def _put_org(txn: WriteTxn, org: OrgRecord) -> None:
    txn.put_org(org, at_us=0, actor="test")


class _Site(http.server.BaseHTTPRequestHandler):
    pages: ClassVar[dict[str, tuple[int, dict[str, str], bytes]]] = {}

    def do_GET(self) -> None:
        status, headers, body = self.pages.get(self.path, (404, {}, b"not here"))
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def site() -> Iterator[tuple[int, dict[str, tuple[int, dict[str, str], bytes]]]]:
    port = free_port()
    pages: dict[str, tuple[int, dict[str, str], bytes]] = {}
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", port), type("Site", (_Site,), {"pages": pages})
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield port, pages
    finally:
        server.shutdown()
        server.server_close()


def test_website_change_over_the_api(
    fresh_ca: DevCA, lab: DnsLab, site: tuple[int, dict[str, tuple[int, dict[str, str], bytes]]]
) -> None:
    port, pages = site
    lab.add("signed.jp", [f"{n}.signed.jp. IN A 127.0.0.1" for n in ("web", "web2")])
    setup = {"replace": [("allow_attested = true", "allow_attested = true\n"
                          f"http_port = {port}\nallow_private_targets = true")]}  # fmt: skip
    with serving(fresh_ca, setup) as (base, ca, _):
        admin = client(base, ca, "admin")
        paying_org(admin, "acme")
        paying_org(admin, "other", domain="other.co.jp")
        portal = keyed(base, ca, new_key(base, ca, "issuer", "acme")["secret"])
        stranger = keyed(base, ca, new_key(base, ca, "issuer", "other")["secret"])
        path = "/v1/admin/organizations/acme/domains/challenges"
        asked = {"domain": "web.signed.jp", "method": "website-change"}
        assert stranger.post(path, json=asked).status_code == 404  # another account's org
        r = portal.post(path, json=asked)
        assert r.status_code == 201, r.text
        ch = r.json()
        assert (
            ch["url"]
            == f"http://web.signed.jp:{port}/.well-known/pki-validation/hanko-{ch['id']}.txt"
        )
        file = urlsplit(ch["url"]).path
        verify = f"{path}/{ch['id']}/verify"

        r = portal.post(verify, json={})
        assert (r.status_code, r.json()["error"]) == (422, "dcv_failed")
        assert "answered 404" in r.json()["detail"]
        pages[file] = (200, {}, b"a value of something else\n")
        assert "does not hold" in portal.post(verify, json={}).json()["detail"]
        # The value of another domain's challenge proves nothing here.
        r2 = portal.post(path, json={"domain": "web2.signed.jp", "method": "website-change"})
        pages[file] = (200, {}, r2.json()["random_value"].encode())
        assert "does not hold" in portal.post(verify, json={}).json()["detail"]
        # Redirected as the BR allow (302, same host and port), the value is found.
        pages[file] = (302, {"Location": "/moved.txt"}, b"")
        pages["/moved.txt"] = (200, {}, ch["random_value"].encode() + b"\n")
        r = portal.post(verify, json={})
        assert r.status_code == 200, r.text
        evidence = r.json()["evidence"]
        assert [h["status"] for h in evidence["hops"]] == [302, 200]
        assert stranger.post(verify, json={}).status_code == 404
        assert portal.get(f"{path}/{ch['id']}").json()["status"] == "valid"

        # A redirect to a port the BR do not allow is refused.
        file2 = urlsplit(r2.json()["url"]).path
        pages[file2] = (301, {"Location": "http://web2.signed.jp:8080/x"}, b"")
        r = portal.post(f"{path}/{r2.json()['id']}/verify", json={})
        assert r.status_code == 422
        assert "port 8080" in r.json()["detail"]

        # website-change covers that name alone.
        issue = {"profile": "ov", "organization": "acme"}
        r = portal.post("/v1/certificates", json={**issue, "csr": csr("web.signed.jp")})
        assert r.status_code == 201, r.text
        r = portal.post("/v1/certificates", json={**issue, "csr": csr("www.web.signed.jp")})
        assert (r.status_code, r.json()["error"]) == (422, "domain_not_validated")


def _text(message: str) -> str:
    parsed = email.message_from_string(message, policy=email.policy.default)
    assert isinstance(parsed, email.message.EmailMessage)
    return str(parsed.get_content())


class _Mailbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], str]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), envelope.content.decode()))
        return "250 OK"


def _authenticate(
    server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (
        auth_data.login.decode(),
        auth_data.password.decode(),
    ) == (SMTP_USER, SMTP_PASSWORD)
    return AuthResult(success=ok)


@pytest.fixture
def smtp(fresh_ca: DevCA) -> Iterator[tuple[int, _Mailbox]]:
    """A real SMTP server on loopback: STARTTLS required (the CA's internal TLS
    certificate for 127.0.0.1), AUTH required after it."""
    tls_dir = fresh_ca.directory / "tls"
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tls_dir / "api.pem", tls_dir / "api.key")
    box = _Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port, tls_context=context,
                            require_starttls=True, authenticator=_authenticate,
                            auth_required=True)  # fmt: skip
    controller.start()
    try:
        yield port, box
    finally:
        controller.stop()


def test_email_over_the_api(fresh_ca: DevCA, smtp: tuple[int, _Mailbox]) -> None:
    port, box = smtp
    secret = fresh_ca.directory / "secrets" / "smtp.password"
    secret.write_text(SMTP_PASSWORD)
    secret.chmod(0o600)

    def email(port: int) -> str:
        return (f'\n[email]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "starttls"\n'
                f'user = "{SMTP_USER}"\npassword = {{ file = "secrets/smtp.password" }}\n'
                'sender = "dcv@pki.hanko.example.com"\n'
                'ca_file = "tls/internal-ca.pem"\n')  # fmt: skip

    original = fresh_ca.config_path.read_text()
    with serving(fresh_ca, email(port)) as (base, ca, _):
        admin = client(base, ca, "admin")
        paying_org(admin, "acme")
        path = "/v1/admin/organizations/acme/domains/challenges"
        r = admin.post(path, json={"domain": "mail.signed.jp", "method": "email",
                                   "address": "info@mail.signed.jp"})  # fmt: skip
        assert (r.status_code, r.json()["error"]) == (422, "address_not_constructed")
        r = admin.post(path, json={"domain": "mail.signed.jp", "method": "email",
                                   "address": "hostmaster@mail.signed.jp"})  # fmt: skip
        assert r.status_code == 201, r.text
        ch = r.json()
        assert ch["random_value"] is None  # it travels in the e-mail only
        assert ch["sent_to"] == "hostmaster@mail.signed.jp"
        [(to, message)] = box.messages
        assert to == ["hostmaster@mail.signed.jp"]
        assert "Subject: Domain validation for mail.signed.jp" in message
        value = re.search(r"^    ([a-z2-7]{32})\r?$", _text(message), re.M)
        assert value is not None, message
        other = admin.post(path, json={"domain": "mail2.signed.jp", "method": "email"}).json()
        other_value = re.search(r"^    ([a-z2-7]{32})\r?$", _text(box.messages[-1][1]), re.M)
        assert other_value is not None
        assert other["sent_to"] == "admin@mail2.signed.jp"

        verify = f"{path}/{ch['id']}/verify"
        r = admin.post(verify, json={"value": "not-the-value"})
        assert (r.status_code, r.json()["error"]) == (422, "dcv_failed")
        r = admin.post(verify, json={"value": other_value.group(1)})  # another domain's
        assert (r.status_code, r.json()["error"]) == (422, "dcv_failed")
        r = admin.post(verify, json={"value": value.group(1)})
        assert r.status_code == 200, r.text
        assert r.json()["method"] == "email"
        assert r.json()["evidence"]["sent_to"] == "hostmaster@mail.signed.jp"
        assert domains(str(ca.config_path))["mail.signed.jp"] == "email"

    # The SMTP server gone: a 503 that names no host, and no challenge.
    fresh_ca.config_path.write_text(original)
    with serving(fresh_ca, email(free_port())) as (base, ca, _):
        r = client(base, ca, "admin").post(
            "/v1/admin/organizations/acme/domains/challenges",
            json={"domain": "mail3.signed.jp", "method": "email"},
        )
        assert (r.status_code, r.json()["error"]) == (503, "email_not_sent")
        assert "127.0.0.1" not in r.text


def test_attestation_can_be_turned_off(fresh_ca: DevCA) -> None:
    off = {"replace": [("allow_attested = true", "allow_attested = false")]}
    with serving(fresh_ca, off) as (base, ca, _):
        admin = client(base, ca, "admin")
        admin.post("/v1/admin/accounts", json={"id": "acme", "name": "Acme"})
        org = {"id": "acme", "account": "acme", "level": "ov", "organization": "Acme K.K.",
               "country": "JP", "state": "Tokyo-to", "locality": "Chiyoda-ku"}  # fmt: skip
        assert admin.post("/v1/admin/organizations", json=org).status_code == 201
        r = admin.post("/v1/admin/organizations/acme/domains",
                       json={"domain": "example.co.jp", "method": "dns-txt"})  # fmt: skip
        assert (r.status_code, r.json()["error"]) == (422, "attestation_disabled")
    out = hanko("domain", "validate", "-c", str(fresh_ca.config_path), "--org", "acme",
                "--domain", "example.co.jp")  # fmt: skip
    assert out.returncode == 1
    assert len(out.stderr.strip().splitlines()) == 1
    assert "validations it performs" in out.stderr


def test_an_attestation_records_who_asserted_it(fresh_ca: DevCA) -> None:
    cfg = str(fresh_ca.config_path)
    setup_org(cfg)
    out = hanko("domain", "validate", "-c", cfg, "--org", "acme", "--domain", "example.co.jp",
                "--json")  # fmt: skip
    assert out.returncode == 0, out.stderr
    rec = json.loads(out.stdout)
    assert rec["attested_by"].startswith("cli:")
    assert rec["method"] == "dns-txt"
