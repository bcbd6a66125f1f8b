"""`hanko serve` with five remote perspectives (real `hanko perspective serve`
processes, each with its own Unbound view): CAA on the RPC's issuance and the portal's
dns-change stand only when the quorum corroborates; what was corroborated is recorded
(audit log, evidence) and a refusal names the perspectives that did not; /readyz says
when too few are reachable; the metrics count each perspective's answers."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.dns_lab import DnsLab
from core.store import LmdbStore
from tests.conftest import (
    DevCA,
    Service,
    anonymous,
    client,
    csr,
    hanko,
    keyed,
    new_key,
    paying_org,
    serving,
)
from tests.core.mpic.conftest import World

FIVE = ["ap-tokyo", "eu-paris", "eu-berlin", "us-ohio", "sa-lima"]
RIRS = "APNIC, ARIN, LACNIC, RIPE"


def audit(ca: DevCA, action: str) -> list[tuple[str, dict[str, str]]]:
    with (
        LmdbStore(ca.config.path(ca.config.store.path), readonly=True) as store,
        store.read() as txn,
    ):
        return [(e.subject, e.detail) for e in txn.iter_audit() if e.action == action]


@pytest.fixture(scope="module")
def served(world: World) -> Iterator[Service]:
    world.remotes.configure(FIVE, timeout="3s")
    with serving(world.ca) as running:
        base, ca, _ = running
        admin = client(base, ca, "admin")
        paying_org(admin, "acme", domain="signed.jp")
        yield running


@pytest.fixture
def s(served: Service, world: World) -> Iterator[Service]:
    try:
        yield served
    finally:
        world.remotes.restore()


def _issue(service: Service, name: str) -> tuple[int, dict[str, str]]:
    base, ca, _ = service
    rpc = keyed(base, ca, new_key(base, ca, "issuer", "acme")["secret"])
    r = rpc.post(
        "/v1/certificates", json={"profile": "ov", "organization": "acme", "csr": csr(name)}
    )
    body: dict[str, str] = r.json()
    return r.status_code, body


def test_caa_on_issuance_is_corroborated_and_recorded(s: Service, world: World) -> None:
    status, body = _issue(s, "caa1.signed.jp")
    assert status == 201, body
    [(serial, detail)] = [a for a in audit(world.ca, "caa.check") if a[0] == body["serial"]]
    assert detail["corroboration"] == f"5/5, RIRs {RIRS}"
    assert serial == body["serial"]


def test_one_hijacked_caa_view_is_outvoted(s: Service, world: World) -> None:
    world.remotes.remotes["eu-berlin"].view.hijack(
        ['caa2.signed.jp. 1 IN CAA 0 issue "evil.example"']
    )
    status, body = _issue(s, "caa2.signed.jp")
    assert status == 201, body
    [detail] = [d for subject, d in audit(world.ca, "caa.check") if subject == body["serial"]]
    assert detail["corroboration"] == f"4/5, RIRs {RIRS}"


def test_two_forbidding_caa_views_refuse_issuance_naming_both(s: Service, world: World) -> None:
    for code in ("ap-tokyo", "us-ohio"):
        world.remotes.remotes[code].view.hijack(['caa3.signed.jp. 1 IN CAA 0 issue "evil.example"'])
    status, body = _issue(s, "caa3.signed.jp")
    assert status == 422, body
    assert body["error"] == "not_corroborated"
    assert body["quorum"] == "3/5"
    assert "ap-tokyo: " in body["perspectives"]
    assert "us-ohio: " in body["perspectives"]
    assert "CAA for caa3.signed.jp" in body["detail"]


def test_dns_change_for_a_portal_is_corroborated(s: Service, world: World, lab: DnsLab) -> None:
    base, ca, _ = s
    admin = client(base, ca, "admin")
    r = admin.post(
        "/v1/admin/organizations/acme/domains/challenges",
        json={"domain": "portal.plain.jp", "method": "dns-change"},
    )
    assert r.status_code == 201, r.text
    ch = r.json()
    lab.add("plain.jp", [f'{ch["record_name"]}. IN TXT "{ch["random_value"]}"'])
    # Two perspectives see another value: refused, both named, the attempt counted.
    for code in ("eu-paris", "sa-lima"):
        world.remotes.remotes[code].view.hijack([f'{ch["record_name"]}. 1 IN TXT "not-it"'])
    path = f"/v1/admin/organizations/acme/domains/challenges/{ch['id']}/verify"
    r = admin.post(path, json={})
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "not_corroborated"
    assert "eu-paris: " in r.json()["perspectives"]
    assert "sa-lima: " in r.json()["perspectives"]
    world.remotes.restore()
    # A retry is a new attempt: with the views restored it stands, 5/5.
    r = admin.post(path, json={})
    assert r.status_code == 200, r.text
    evidence = r.json()["evidence"]
    assert evidence["corroboration"] == f"5/5, RIRs {RIRS}"


def test_dns_change_from_the_command_line_with_one_view_hijacked(
    s: Service, world: World, lab: DnsLab
) -> None:
    cfg = str(world.ca.config_path)
    out = hanko("domain", "challenge", "-c", cfg, "--org", "acme", "--domain", "cli.plain.jp",
                "--method", "dns-change", "--json")  # fmt: skip
    assert out.returncode == 0, out.stderr
    ch = json.loads(out.stdout)
    lab.add("plain.jp", [f'{ch["record_name"]}. IN TXT "{ch["random_value"]}"'])
    world.remotes.remotes["us-ohio"].view.hijack([f'{ch["record_name"]}. 1 IN TXT "not-it"'])
    out = hanko("domain", "verify", "-c", cfg, "--org", "acme", "--challenge", ch["id"], "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["evidence"]["corroboration"] == "4/5, RIRs APNIC, LACNIC, RIPE"


def test_readiness_and_metrics_name_the_perspectives(s: Service, world: World) -> None:
    base, ca, _ = s
    assert anonymous(base, ca).get("/readyz").status_code == 200
    metrics = client(base, ca, "admin").get("/v1/statistics").json()["mpic"]
    assert {p["code"] for p in metrics["perspectives"]} == set(FIVE)
    world.remotes.kill("eu-berlin")
    world.remotes.kill("us-ohio")
    try:
        status, body = _issue(s, "down.signed.jp")
        assert status == 503, body
        assert body["error"] == "corroboration_unavailable"
        ready = anonymous(base, ca).get("/readyz")
        assert ready.status_code == 503
        assert (
            "3 of 5 remote perspectives reachable" in ready.json()["reasons"]["remote_perspectives"]
        )
    finally:
        world.remotes.revive("eu-berlin")
        world.remotes.revive("us-ohio")
    assert _issue(s, "up-again.signed.jp")[0] == 201
    assert anonymous(base, ca).get("/readyz").status_code == 200
    stats = client(base, ca, "admin").get("/v1/statistics").json()["mpic"]
    berlin = next(p for p in stats["perspectives"] if p["code"] == "eu-berlin")
    assert berlin["unreachable"] >= 1
    assert berlin["answers"] >= 1


def _table(*entries: tuple[str, str]) -> str:
    items = ", ".join(
        f'{{ url = "https://127.0.0.{50 + k}:8600", code = "{code}", rir = "{rir}" }}'
        for k, (code, rir) in enumerate(entries)
    )
    return f"[mpic]\nperspectives = [{items}]\n"


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        (
            _table(("a", "APNIC"), ("b", "RIPE"), ("c", "ARIN")),
            "mpic.perspectives: 3 configured, the BR require 4 remote perspectives",
        ),
        (
            _table(("a", "APNIC"), ("a", "RIPE"), ("c", "ARIN"), ("d", "ARIN")),
            "mpic.perspectives[1].code: 'a' is used by two perspectives",
        ),
        (
            _table(("a", "APNIC"), ("b", "APNIC"), ("c", "APNIC"), ("d", "APNIC")),
            "mpic.perspectives: they span 1 RIR (APNIC); the corroborating perspectives must"
            " span at least 2",
        ),
        (_table(("a", "APNIC"), ("b", "RIPE"), ("c", "ARIN"), ("d", "LACNIC")), None),
        ("[mpic]\nenabled = false\n", None),
    ],
)
def test_check_config_holds_the_br_minimum(
    fresh_ca: DevCA, table: str, problem: str | None
) -> None:
    cfg = fresh_ca.config_path
    text = cfg.read_text()
    new, n = re.subn(r"(?ms)^\[mpic\]\n.*?(?=^\[)", table + "\n", text)
    assert n == 1
    cfg.write_text(new)
    (fresh_ca.directory / "tls" / "mpic-client.pem").write_text("x")
    (fresh_ca.directory / "tls" / "mpic-client.key").write_text("x")
    out = hanko("check-config", "-c", str(cfg))
    if problem is None:
        assert out.returncode == 0, out.stderr
    else:
        assert out.returncode != 0
        assert problem in out.stderr, out.stderr


def test_the_lab_switch_is_only_for_loopback_listeners(fresh_ca: DevCA) -> None:
    cfg = fresh_ca.config_path
    cfg.write_text(cfg.read_text().replace('listen = "127.0.0.1:8080"', 'listen = "0.0.0.0:8080"'))
    out = hanko("check-config", "-c", str(cfg))
    assert out.returncode != 0
    assert "mpic.enabled: false only while every listener is on loopback" in out.stderr


def test_perspective_commands_refuse_bad_input_in_one_line(fresh_ca: DevCA, tmp_path: Path) -> None:
    target = tmp_path / "p"
    base = ["perspective", "init", str(target), "-c", str(fresh_ca.config_path)]
    for extra, problem in (
        (["--code", "ap-tokyo", "--rir", "MARS"], "--rir: one of AFRINIC, APNIC"),
        (["--code", "Tokyo 1", "--rir", "APNIC"], "--code: lower-case letters"),
    ):
        out = hanko(*base, *extra, "--listen", "127.0.0.1:8600", "--resolver", "127.0.0.1:53")
        assert out.returncode != 0
        [line] = out.stderr.strip().splitlines()
        assert problem in line
        assert not target.exists()  # nothing written
    out = hanko("perspective", "serve", "-c", str(tmp_path / "missing.toml"))
    assert out.returncode != 0
    assert len(out.stderr.strip().splitlines()) == 1
    assert "Traceback" not in out.stderr
