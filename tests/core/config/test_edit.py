"""Rewriting the [[ca.issuers]] tables of a configuration's text (core/config/edit.py)."""

from __future__ import annotations

import datetime as dt
import tomllib

from core.config.edit import with_issuers
from core.config.issuers import IssuerConfig

TEXT = """\
# the operator's comment
[store]
path = "lmdb"

[ca]
root_cert = "ca/root.pem"
issuer_cert = "ca/issuing.pem"   # the one-issuer form
issuer_key_label = "k"
ocsp_responder_cert = "ca/o.pem"
ocsp_responder_key_label = "o"
base_url = "http://pki.example.com"

[api]
listen = "127.0.0.1:8443"
"""


def test_legacy_form_becomes_tables_and_comments_stay() -> None:
    one = IssuerConfig(name="issuing", cert="ca/issuing.pem", key_label="k", profiles=["*"],
                       ocsp_responder_cert="ca/o.pem", ocsp_responder_key_label="o",
                       crl_url="http://pki.example.com/crl")  # fmt: skip
    two = IssuerConfig(name="r1", cert="ca/issuers/r1.pem", key_label="kr", key_type="rsa-2048",
                       retired_at=dt.datetime(2027, 1, 2, 3, 4, 5, tzinfo=dt.UTC))  # fmt: skip
    out = with_issuers(TEXT, [one, two], drop_legacy=True)
    parsed = tomllib.loads(out)
    assert "issuer_cert" not in parsed["ca"]
    assert parsed["ca"]["base_url"] == "http://pki.example.com"
    assert [i["name"] for i in parsed["ca"]["issuers"]] == ["issuing", "r1"]
    assert parsed["ca"]["issuers"][0]["crl_url"] == "http://pki.example.com/crl"
    assert parsed["ca"]["issuers"][1]["profiles"] == []
    assert parsed["ca"]["issuers"][1]["retired_at"] == dt.datetime(
        2027, 1, 2, 3, 4, 5, tzinfo=dt.UTC
    )
    assert parsed["api"]["listen"] == "127.0.0.1:8443"
    assert out.startswith("# the operator's comment\n")
    # Rewriting again replaces the tables in place: same text.
    assert with_issuers(out, [one, two]) == out
    assert tomllib.loads(with_issuers(out, [two]))["ca"]["issuers"][0]["name"] == "r1"
