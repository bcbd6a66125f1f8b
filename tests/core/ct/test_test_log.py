"""The tests' CT log signs real SCTs: over HTTP on loopback, what it answers parses,
and verifies against its published key over the precertificate's TBS without poison;
its failure modes fail as they should."""

from __future__ import annotations

import base64
import datetime as dt

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from core.ca.issuer import issuer_info
from core.ct.precert import POISON
from core.ct.sct import SctError, issuer_key_hash, parse_answer, signed_data, verify
from core.issuance.tbs import TbsEncoder
from signer.algorithms import KeyType
from signer.splice import assemble, signature_algorithm_der
from tests.core.issuance.test_tbs import ORG, issuer
from tests.ct_log import SPKI, TestLog


def precert_chain() -> tuple[list[bytes], bytes, bytes]:
    key_type = KeyType.ECDSA_P256
    issuing = issuer(key_type)
    alg, placeholder = signature_algorithm_der(key_type)
    enc = TbsEncoder(issuer_info(issuing, key_type, "http://pki.example.com", ocsp=True), alg)
    start = dt.datetime.now(dt.UTC).replace(microsecond=0)
    spki = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(*SPKI)

    def tbs(extra: bytes) -> bytes:
        return enc.tbs(
            org=ORG,
            level="ov",
            names=["www.example.co.jp"],
            common_name=None,
            spki=spki,
            serial=77,
            partition=0,
            not_before=start,
            not_after=start + dt.timedelta(days=100),
            extra=extra,
        )

    pre = assemble(tbs(POISON), alg, placeholder)
    issuer_der = issuing.public_bytes(serialization.Encoding.DER)
    return [pre, issuer_der], tbs(b""), issuer_key_hash(issuing.public_key().public_bytes(*SPKI))


def submit(log: TestLog, chain: list[bytes], timeout: float = 5) -> httpx.Response:
    body = {"chain": [base64.b64encode(c).decode() for c in chain]}
    return httpx.post(f"{log.url}/ct/v1/add-pre-chain", json=body, timeout=timeout)


def test_the_test_log_signs_real_scts_and_fails_on_demand() -> None:
    chain, signed_tbs, ikh = precert_chain()
    good, wrong, failing, slow = (
        TestLog("a"),
        TestLog("b", mode="wrong_key"),
        TestLog("c", mode="error"),
        TestLog("d", mode="slow", delay=2),
    )
    try:
        sct = parse_answer(submit(good, chain).content)
        verify(sct, good.key_der, signed_data(sct, tbs=signed_tbs, issuer_key_hash=ikh))
        assert good.submissions[0][0] == "add-pre-chain"
        other = parse_answer(submit(wrong, chain).content)
        with pytest.raises(SctError):
            verify(other, wrong.key_der, signed_data(other, tbs=signed_tbs, issuer_key_hash=ikh))
        assert submit(failing, chain).status_code == 500
        with pytest.raises(httpx.TimeoutException):
            submit(slow, chain, timeout=0.5)
        x509.load_der_x509_certificate(chain[0])  # the submitted precertificate parses
    finally:
        for log in (good, wrong, failing, slow):
            log.close()
