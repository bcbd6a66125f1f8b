"""Pushed events, the pure parts: the signature a receiver checks, the retry schedule
of a day, and which receiver URLs are refused."""

from __future__ import annotations

import itertools

import pytest

from core.base.errors import PolicyError
from core.config.settings import NotifyConfig
from core.notify import retry, signing, targets

SECRET = b"whsec-test"
BODY = b'{"id":"evt_1","type":"certificate.issued"}'


def test_a_signature_verifies_and_nothing_else_does() -> None:
    header = signing.signature(SECRET, BODY, 1_796_000_000)
    assert header.startswith("t=1796000000,v1=")
    assert signing.verify(SECRET, BODY, header, now=1_796_000_100)
    assert not signing.verify(b"other", BODY, header, now=1_796_000_100)
    assert not signing.verify(SECRET, BODY + b" ", header, now=1_796_000_100)
    assert not signing.verify(SECRET, BODY, header, now=1_796_000_000 + 301)  # replayed late
    forged = header.replace("t=1796000000", "t=1796000200")
    assert not signing.verify(SECRET, BODY, forged, now=1_796_000_200)
    assert not signing.verify(SECRET, BODY, "v1=abc", now=1_796_000_000)
    # Rotation: a receiver accepts either of two v1 values.
    both = header + ",v1=" + "0" * 64
    assert signing.verify(SECRET, BODY, both, now=1_796_000_000)


def test_retries_run_for_a_day_then_stop() -> None:
    schedule = [int(d.seconds) for d in NotifyConfig().retry_schedule]
    first = 1_000_000
    assert retry.next_attempt(first, 0, schedule) == first
    assert retry.next_attempt(first, 1, schedule) == first + 30
    due = [retry.next_attempt(first, n, schedule) for n in range(1, len(schedule) + 1)]
    assert all(a is not None and b is not None and a < b for a, b in itertools.pairwise(due))
    assert due[-1] == first + 86400  # a day
    assert retry.next_attempt(first, len(schedule) + 1, schedule) is None


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("ftp://hooks.example.com/x", "webhook_url_invalid"),
        ("https://user:pw@hooks.example.com/x", "webhook_url_invalid"),
        ("https:///x", "webhook_url_invalid"),
        ("http://127.0.0.1:8080/hook", "webhook_url_private"),
        ("http://[::1]/hook", "webhook_url_private"),
        ("http://10.1.2.3/hook", "webhook_url_private"),
        ("http://169.254.169.254/latest/meta-data", "webhook_url_private"),
        ("http://localhost/hook", "webhook_url_private"),
    ],
)
def test_refused_receivers(url: str, code: str) -> None:
    with pytest.raises(PolicyError) as err:
        targets.check_url(url, allow_private=False)
    assert err.value.code == code


def test_accepted_receivers() -> None:
    assert targets.check_url("https://hooks.example.com/hanko", allow_private=False)
    assert targets.check_url("http://93.184.216.34/hook", allow_private=False)
    with pytest.raises(PolicyError):  # documentation ranges are not public either
        targets.check_url("http://203.0.113.9/hook", allow_private=False)
    assert targets.check_url("http://127.0.0.1:8080/hook", allow_private=True)
