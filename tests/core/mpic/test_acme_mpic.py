"""ACME with five remote perspectives: certbot (http-01 and dns-01) and lego (http-01)
against `hanko serve`, whose resolver is pebble-challtestsrv; each perspective asks an
Unbound of its own that forwards to it (so one perspective's view can be hijacked).
What the quorum corroborated is recorded with the domain validation; two hijacked
views make the challenge invalid, its problem `unauthorized` naming both."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.dns_lab import ResolverView
from bench.perspectives import RIRS6, PerspectiveLab
from tests.conftest import BIN, DevCA, free_ports, hanko
from tests.core.api.test_acme_clients import (
    Deployment,
    _start,
    acme_organization,
    certbot,
    check_certificate,
    configure_for_clients,
    dns01_hook,
    issue_with_certbot,
    run_lego,
    start_challtestsrv,
)

pytestmark = pytest.mark.slow
FIVE = RIRS6[:5]  # ap-tokyo, ap-osaka, eu-paris, eu-berlin, us-ohio


class MpicDeployment(Deployment):
    remotes: PerspectiveLab


@pytest.fixture
def deployment(fresh_ca: DevCA, tmp_path: Path) -> Iterator[MpicDeployment]:
    if shutil.which("certbot") is None or shutil.which("pebble-challtestsrv") is None:
        pytest.fail("certbot and pebble are not installed: run scripts/dev.sh setup")
    api, status, dns, management, http = free_ports(5)
    chall = start_challtestsrv(dns, management)
    remotes = PerspectiveLab(
        fresh_ca.config_path,
        tmp_path / "perspectives",
        FIVE,
        lambda code: ResolverView(tmp_path / f"view-{code}", forward=f"127.0.0.1@{dns}").start(),
    )
    proc = None
    try:
        remotes.start()
        remotes.configure(timeout="5s")
        configure_for_clients(fresh_ca, api=api, status=status, http=http, dns=dns)
        proc = _start([str(BIN / "hanko"), "serve", "-c", str(fresh_ca.config_path)])
        assert proc.stdout is not None
        assert "serving the API" in proc.stdout.readline()
        base = f"https://127.0.0.1:{api}"
        acme_organization(base, fresh_ca)
        d = MpicDeployment(base, fresh_ca, http, management)
        d.remotes = remotes
        yield d
    finally:
        for p in (proc, chall):
            if p is not None:
                p.terminate()
                p.wait(timeout=30)
        remotes.stop()


def _evidence(d: Deployment) -> dict[str, dict[str, str]]:
    out = hanko("domain", "list", "-c", str(d.ca.config_path), "--org", "acme", "--json")
    assert out.returncode == 0, out.stderr
    return {r["domain"]: r["evidence"] for r in json.loads(out.stdout)}


def test_certbot_and_lego_with_five_perspectives(
    deployment: MpicDeployment, tmp_path: Path
) -> None:
    d = deployment
    views = {code: r.view for code, r in d.remotes.remotes.items()}

    # http-01 by certbot: every perspective fetches the token from its standalone server.
    standalone = (
        "--standalone",
        "--http-01-port",
        str(d.http_port),
        "--http-01-address",
        "127.0.0.1",
    )
    shop = issue_with_certbot(d, tmp_path / "http", "shop.example.co.jp", *standalone)
    check_certificate(d, shop, "shop.example.co.jp")
    assert _evidence(d)["shop.example.co.jp"]["corroboration"] == "5/5, RIRs APNIC, ARIN, RIPE"

    # dns-01 by certbot for a wildcard, one perspective's view hijacked: 4/5 stands.
    views["ap-osaka"].hijack(['_acme-challenge.example.co.jp. 1 IN TXT "not-the-digest"'])
    wild = issue_with_certbot(d, tmp_path / "dns", "*.example.co.jp", *dns01_hook(d, tmp_path))
    check_certificate(d, wild, "*.example.co.jp")
    evidence = _evidence(d)["example.co.jp"]
    assert evidence["corroboration"] == "4/5, RIRs APNIC, ARIN, RIPE"
    assert "ap-osaka" not in evidence["perspectives"]

    # Two views send http-01 elsewhere (a name example.co.jp's dns-01 does not cover):
    # the challenge is invalid, both perspectives are named.
    for code in ("eu-paris", "us-ohio"):
        views[code].hijack(["hijacked.example.ne.jp. 1 IN A 127.0.0.9"])
    kid, hmac_key = d.eab()
    r = certbot(d, tmp_path / "refused", "certonly", "--agree-tos",
                "--register-unsafely-without-email", "--server", d.directory, "--eab-kid", kid,
                "--eab-hmac-key", hmac_key, "--key-type", "ecdsa", "-d", "hijacked.example.ne.jp",
                "--cert-name", "c", *standalone)  # fmt: skip
    said = r.stdout + r.stderr
    assert r.returncode != 0
    assert "unauthorized" in said
    assert "not corroborated" in said
    assert "eu-paris" in said
    assert "us-ohio" in said
    assert "hijacked.example.ne.jp" not in _evidence(d)

    # lego, http-01, a new name.
    out = run_lego(d, tmp_path / "lego", "lego.example.or.jp")
    assert out.returncode == 0, out.stdout + out.stderr
    assert _evidence(d)["lego.example.or.jp"]["corroboration"] == "5/5, RIRs APNIC, ARIN, RIPE"
