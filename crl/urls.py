"""The list of every partition's CRL URL that `/crl/urls.json` publishes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def url_list(issuer_subject: str, key_id: bytes, urls: Sequence[str]) -> dict[str, Any]:
    """The disclosure CCADB asks for: a JSON array of every partition's full CRL URL."""
    return {"issuer": issuer_subject, "issuer_key_id": key_id.hex(), "crl_urls": list(urls)}
