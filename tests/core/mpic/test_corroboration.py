"""Corroboration against six real `hanko perspective serve` processes, each on a
loopback address of its own with a validating resolver of its own (an Unbound view of
the lab's signed zones): the primary's client (core/mpic/client.py) asks them every
kind of check; views are hijacked one or two at a time, processes killed or stopped,
and the links are mutual TLS both ways."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx
import pytest
import trio

from core.base.clock import SystemClock
from core.ca import internal_tls
from core.mpic.client import Corroborator, Perspective, client_context
from core.mpic.messages import Check, CheckRequest, encode
from core.mpic.quorum import Verdict
from tests.conftest import CAA_IDENTITY
from tests.core.mpic.conftest import RANDOM, World, hijack_all_kinds


def test_all_six_agree_on_every_kind_of_check(w: World) -> None:
    verdicts = w.ask()
    for v in verdicts:
        assert v.corroborated, v.reason
        assert v.quorum == "6/6"
        assert v.summary() == "6/6, RIRs APNIC, ARIN, LACNIC, RIPE"


def test_one_hijacked_view_is_outvoted_and_named(w: World) -> None:
    hijack_all_kinds(w, "eu-paris")
    verdicts = w.ask()
    for check, v in zip(w.checks(), verdicts, strict=True):
        assert v.corroborated, (check.kind, v.reason)
        assert v.quorum == "5/6"
        assert v.failed == ("eu-paris",)
    said = {c.kind: v.why["eu-paris"] for c, v in zip(w.checks(), verdicts, strict=True)}
    assert "another-ca.example" in said["caa"] or "not permit" in said["caa"], said["caa"]
    assert "expected value" in said["dns-01"]
    assert "random value" in said["dns-change"]
    assert said["http-01"]
    assert said["website-change"]


def test_two_disagreeing_of_five_refuse_and_both_are_named(w: World) -> None:
    five = ["ap-tokyo", "ap-osaka", "eu-paris", "us-ohio", "sa-lima"]
    hijack_all_kinds(w, "ap-osaka")
    hijack_all_kinds(w, "us-ohio")
    for v in w.ask(five):
        assert not v.corroborated
        assert v.quorum == "3/5"
        assert v.failed == ("ap-osaka", "us-ohio")
        assert "ap-osaka" in v.reason
        assert "us-ohio" in v.reason
        assert not v.unanswered  # they answered: a refusal, not "try later"


def test_corroboration_from_one_rir_only_is_refused(w: World) -> None:
    three = ["ap-tokyo", "ap-osaka", "eu-paris"]
    hijack_all_kinds(w, "eu-paris")
    for v in w.ask(three, required=3):
        assert not v.corroborated
        assert (v.quorum, v.rirs) == ("2/3", ("APNIC",))
        assert "span 1 RIR" in v.reason


def test_a_perspective_down_counts_as_disagreeing(w: World) -> None:
    five = ["ap-tokyo", "eu-paris", "eu-berlin", "us-ohio", "sa-lima"]
    w.remotes.kill("eu-berlin")
    try:
        [v] = w.ask(five, checks=[Check(kind="caa", name="m.signed.jp")])
        assert v.corroborated
        assert v.quorum == "4/5"
        assert v.why["eu-berlin"].startswith("unreachable")
        hijack_all_kinds(w, "ap-tokyo")
        [v] = w.ask(five, checks=[Check(kind="caa", name="m.signed.jp")])
        assert not v.corroborated
        assert v.failed == ("ap-tokyo", "eu-berlin")
    finally:
        w.remotes.revive("eu-berlin")


def test_only_unreachable_perspectives_make_a_retryable_refusal(w: World) -> None:
    five = ["ap-tokyo", "eu-paris", "eu-berlin", "us-ohio", "sa-lima"]
    w.remotes.kill("eu-berlin")
    w.remotes.kill("us-ohio")
    try:
        [v] = w.ask(five, checks=[Check(kind="caa", name="m.signed.jp")])
        assert not v.corroborated
        assert v.unanswered
    finally:
        w.remotes.revive("eu-berlin")
        w.remotes.revive("us-ohio")


def test_a_perspective_answering_too_late_is_cut_at_the_deadline(w: World) -> None:
    w.remotes.pause("sa-lima")
    try:
        [v] = w.ask(timeout=1.5, checks=[Check(kind="caa", name="m.signed.jp")])
        assert v.corroborated
        assert v.quorum == "5/6"
        assert v.why == {"sa-lima": "no answer within 1.5 s"}
    finally:
        w.remotes.resume("sa-lima")


def _perspective_client(w: World, cert: tuple[str, str] | None) -> httpx.Client:
    tls = ssl.create_default_context(cafile=str(w.ca.directory / "tls" / "internal-ca.pem"))
    if cert is not None:
        tls.load_cert_chain(*cert)
    return httpx.Client(verify=tls, timeout=5)


def test_every_attempt_is_new_and_a_reused_attempt_id_is_refused(w: World) -> None:
    tls_dir = w.ca.directory / "tls"
    remote = w.remotes.remotes["ap-tokyo"]
    body = encode(
        CheckRequest(
            attempt="a" * 32,
            checks=[Check(kind="caa", name="m.signed.jp")],
            caa_identities=[CAA_IDENTITY],
        )
    )
    with _perspective_client(
        w, (str(tls_dir / "mpic-client.pem"), str(tls_dir / "mpic-client.key"))
    ) as c:
        first = c.post(f"{remote.url}/v1/checks", content=body)
        assert first.status_code == 200, first.text
        assert first.json()["results"] == [{"ok": True, "detail": ""}]
        again = c.post(f"{remote.url}/v1/checks", content=body)
        assert again.status_code == 400
        assert again.json()["error"] == "attempt_reused"
        metrics = c.get(f"{remote.url}/metrics").text
        assert "hanko_perspective_attempts_refused_total 1.0" in metrics
        assert c.get(f"{remote.url}/readyz").json() == {"ready": True, "perspective": "ap-tokyo"}


def test_a_perspective_refuses_a_client_without_a_certificate_of_the_internal_ca(
    w: World, tmp_path: Path
) -> None:
    remote = w.remotes.remotes["eu-paris"]
    with (
        _perspective_client(w, None) as c,
        pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)),
    ):
        c.get(f"{remote.url}/healthz")
    other = tmp_path / "other-ca"
    internal_tls.create(other, label="another deployment", now=SystemClock().now())
    internal_tls.issue_client(
        other, name="intruder", out=tmp_path / "intruder", now=SystemClock().now()
    )
    with (
        _perspective_client(
            w, (str(tmp_path / "intruder.pem"), str(tmp_path / "intruder.key"))
        ) as c,
        pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)),
    ):
        c.get(f"{remote.url}/healthz")


def test_the_primary_refuses_perspectives_whose_certificate_is_not_from_its_ca(
    w: World, tmp_path: Path
) -> None:
    other = tmp_path / "other-ca"
    internal_tls.create(other, label="another deployment", now=SystemClock().now())
    tls_dir = w.ca.directory / "tls"
    chosen = [w.remotes.remotes[c] for c in ("ap-tokyo", "eu-paris", "us-ohio")]
    # The same client certificate, but trusting another internal CA for the servers.
    corroborator = Corroborator(
        [Perspective(url=r.url, code=r.code, rir=r.rir) for r in chosen],
        required=lambda: 3,
        timeout=3,
        tls=client_context(
            ca_file=str(other / "internal-ca.pem"),
            cert_file=str(tls_dir / "mpic-client.pem"),
            key_file=str(tls_dir / "mpic-client.key"),
        ),
    )

    async def run() -> list[Verdict]:
        try:
            return await corroborator.corroborate(
                [Check(kind="caa", name="m.signed.jp")], caa_identities=[CAA_IDENTITY]
            )
        finally:
            await corroborator.aclose()

    [v] = trio.run(run)
    assert not v.corroborated
    assert v.unanswered
    assert all(d.startswith("unreachable (TLS") for d in v.why.values()), v.why


def test_asks_made_together_share_requests_and_get_their_own_verdicts(w: World) -> None:
    corroborator = w.remotes.corroborator(timeout=5.0)
    good = Check(
        kind="dns-change",
        name="m.signed.jp",
        record="_validation-hanko.m.signed.jp",
        expect=RANDOM,
    )
    bad = Check(
        kind="dns-change",
        name="m.signed.jp",
        record="_validation-hanko.m.signed.jp",
        expect="not-the-random-value",
    )
    verdicts: dict[int, bool] = {}

    async def run() -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(corroborator.run)

            async def ask(i: int) -> None:
                [v] = await corroborator.corroborate([good if i % 2 == 0 else bad])
                verdicts[i] = v.corroborated

            async with trio.open_nursery() as asks:
                for i in range(40):
                    asks.start_soon(ask, i)
            nursery.cancel_scope.cancel()

    trio.run(run)
    assert verdicts == {i: i % 2 == 0 for i in range(40)}
    stats = corroborator.statistics()
    assert stats.checks == 40
    # Forty asks, at most eight requests under way at once: fewer than forty requests.
    assert all(p.requests < 40 for p in stats.perspectives), stats
