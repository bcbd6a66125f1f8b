"""The signer's raw ceiling, measured by signing processes on a real SoftHSM token."""

from __future__ import annotations

import dataclasses

import pytest

from bench.signer_load import raw_ceiling
from core.base.errors import HankoError
from core.cmd.wiring import worker_spec
from signer.algorithms import KeyType
from tests.conftest import DevCA


def test_raw_ceiling_signs(dev_ca: DevCA) -> None:
    cfg = dev_ca.config
    alg = KeyType(cfg.issuers()[0].config.key_type).default_algorithm
    rate = raw_ceiling(
        worker_spec(cfg), cfg.issuers()[0].config.ocsp_responder_key_label, alg, 1, 0.2
    )
    assert rate > 0


def test_a_process_that_cannot_sign_is_one_error_not_a_wait(dev_ca: DevCA) -> None:
    cfg = dev_ca.config
    spec = dataclasses.replace(worker_spec(cfg), token_label="no-such-token")
    alg = KeyType(cfg.issuers()[0].config.key_type).default_algorithm
    with pytest.raises(HankoError, match=r"^signer ceiling: no token labelled 'no-such-token'"):
        raw_ceiling(spec, cfg.issuers()[0].config.ocsp_responder_key_label, alg, 2, 0.2)
