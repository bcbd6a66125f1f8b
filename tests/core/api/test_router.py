"""The router's answers to what handlers raise, called as the HTTP layer calls it (pure:
no sockets): errors are internal by default."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

import pytest
import trio

from core.api.router import App, Request, Route
from core.base.errors import ClientError, HankoError, PolicyError, SignerError, StoreError


def call(app: App, method: str, path: str) -> tuple[int, dict[bytes, bytes], Any]:
    sent: list[Mapping[str, Any]] = []

    async def receive() -> Mapping[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Mapping[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "headers": [], "client": None}
    trio.run(app, scope, receive, send)
    headers = dict(sent[0]["headers"])
    return int(sent[0]["status"]), headers, json.loads(sent[1]["body"])


def raising(exc: Exception) -> App:
    async def handler(request: Request) -> tuple[int, Any]:
        raise exc

    return App([Route("GET", "/x", None, handler)], None)


def test_an_unmapped_error_is_500_with_the_request_id_and_no_words_of_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret_words = "cannot open /var/lib/hanko/lmdb on db.internal:5432"
    with caplog.at_level(logging.ERROR, logger="hanko.http"):
        status, headers, body = call(raising(HankoError(secret_words, code="oops")), "GET", "/x")
    assert status == 500
    assert secret_words not in json.dumps(body)
    request_id = headers[b"x-request-id"].decode()
    assert request_id in body["detail"]
    assert secret_words in caplog.text  # the detail is the log's


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (StoreError("db.internal:5432 refused"), 503),
        (SignerError("worker 3 at /run/hanko died"), 503),
        (PolicyError("license_exhausted", "no units left"), 422),
        (ClientError("bad field"), 400),
    ],
)
def test_errors_by_type(exc: HankoError, status: int) -> None:
    got, headers, body = call(raising(exc), "GET", "/x")
    assert got == status
    if status == 503:
        assert headers[b"retry-after"].isdigit()
        assert exc.message not in body["detail"]
    else:
        assert body["detail"] == exc.message


def test_a_bug_is_500_without_details() -> None:
    status, _, body = call(raising(ZeroDivisionError("x")), "GET", "/x")
    assert status == 500
    assert body["error"] == "internal_error"


def test_unknown_paths_are_not_echoed() -> None:
    status, _, body = call(raising(ValueError()), "GET", "/nope<script>")
    assert status == 404
    assert "<script>" not in json.dumps(body)
