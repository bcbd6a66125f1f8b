"""A challenge the remote perspectives did not corroborate is shown as an ACME problem
of its type with a subproblem per perspective (RFC 8555 6.7.1)."""

from __future__ import annotations

from core.acme.challenges import challenge_problem
from core.acme.problems import NS
from core.store import AcmeChallenge


def test_subproblems_name_each_perspective() -> None:
    c = AcmeChallenge(
        type="http-01",
        token="t",
        status="invalid",
        error="shop.example.jp: http-01 not corroborated: 3/5 ...",
        error_type="unauthorized",
        perspectives=[("eu-paris", "connection refused"), ("us-ohio", "wrong answer")],
    )
    doc = challenge_problem("shop.example.jp", c).document()
    assert doc["type"] == NS + "unauthorized"
    assert doc["status"] == 403
    assert doc["subproblems"] == [
        {
            "type": NS + "unauthorized",
            "detail": "eu-paris: connection refused",
            "identifier": {"type": "dns", "value": "shop.example.jp"},
        },
        {
            "type": NS + "unauthorized",
            "detail": "us-ohio: wrong answer",
            "identifier": {"type": "dns", "value": "shop.example.jp"},
        },
    ]


def test_a_plain_failure_stays_incorrect_response() -> None:
    c = AcmeChallenge(type="dns-01", token="t", status="invalid", error="no TXT record")
    doc = challenge_problem("x.example.jp", c).document()
    assert doc["type"] == NS + "incorrectResponse"
    assert "subproblems" not in doc
