"""A precertificate's record in the store: committed before CT submission (answered
for, nobody's certificate yet), completed by its final certificate under the same
serial, never completed once revoked."""

from __future__ import annotations

import msgspec
import pytest

from core.base.errors import PolicyError, StoreError
from core.base.reasons import RevocationReason
from core.store import CertRecord, Store, serial_bytes
from tests.core.store.test_store import ENTRY, cert, store  # noqa: F401 - the fixture


def promise(serial: int) -> CertRecord:
    return msgspec.structs.replace(
        cert(serial), account_id="acct-1", precertificate_only=True, der=b"\x30\x03\x02\x01\x02"
    )


def test_precertificate_then_its_certificate(store: Store) -> None:  # noqa: F811
    pre = promise(7001)
    store.write(lambda t: t.insert_precertificate(pre, at_us=1, actor="test"))
    with store.read() as r:
        got = r.get_cert(serial_bytes(7001))
        assert got is not None
        assert got.precertificate_only
        assert list(r.iter_account_certs("acct-1")) == []  # nobody's certificate yet
        assert list(r.iter_expiring(3_000_000_000)) == [serial_bytes(7001)]
    final = msgspec.structs.replace(
        pre, der=b"\x30\x03\x02\x01\x03", precertificate=pre.der, precertificate_only=False
    )
    store.write(lambda t: t.complete_precertificate(final, at_us=2, actor="test"))
    with store.read() as r:
        got = r.get_cert(serial_bytes(7001))
        assert got == final
        assert list(r.iter_account_certs("acct-1")) == [serial_bytes(7001)]
        assert [a.action for a in r.iter_audit()] == ["precertificate", "issue"]
    # Once completed it is a certificate: no second completion, no second insert.
    with pytest.raises(StoreError, match="not a precertificate awaiting issuance"):
        store.write(lambda t: t.complete_precertificate(final, at_us=3, actor="test"))


def test_a_revoked_precertificate_is_never_completed(store: Store) -> None:  # noqa: F811
    pre = promise(7002)
    store.write(lambda t: t.insert_precertificate(pre, at_us=1, actor="test"))
    store.write(
        lambda t: t.revoke(
            serial_bytes(7002),
            at=5,
            reason=RevocationReason.SUPERSEDED,
            actor="test",
            entry_der=ENTRY,
        )
    )
    final = msgspec.structs.replace(pre, precertificate_only=False)
    with pytest.raises(PolicyError) as err:
        store.write(lambda t: t.complete_precertificate(final, at_us=2, actor="test"))
    assert err.value.code == "precertificate_revoked"


def test_only_precertificates_go_in_as_precertificates(store: Store) -> None:  # noqa: F811
    with pytest.raises(ValueError, match="precertificate's record"):
        store.write(lambda t: t.insert_precertificate(cert(7003), at_us=1, actor="test"))
    store.write(lambda t: t.insert_cert(cert(7004), at_us=1, actor="test"))
    with pytest.raises(StoreError):
        store.write(lambda t: t.complete_precertificate(cert(7004), at_us=2, actor="test"))
