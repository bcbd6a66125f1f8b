"""The store against real LMDB environments, a real PostgreSQL cluster and real
processes: what takes the `store` fixture runs on both back ends."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import msgspec
import pytest
import trio

from core.base.errors import DuplicateSerial, NotFound, SchemaMismatch, StoreError
from core.base.reasons import RevocationReason
from core.store import (
    ENVELOPE_GENERATION_KEY,
    CertRecord,
    CertStatus,
    CertStatusView,
    Failed,
    GroupCommitWriter,
    LmdbStore,
    OcspEnvelope,
    OcspRecord,
    Store,
    WriteTxn,
    serial_bytes,
)
from core.store.keys import due_key
from crl.encoder import revoked_entry
from tests.stores import locator

# Any well-formed entry: these tests are about the store, the CRL tests about entries.
ENTRY = revoked_entry(1, dt.datetime(2026, 1, 1, tzinfo=dt.UTC), RevocationReason.UNSPECIFIED)

HERE = Path(__file__).parent
ISSUER = b"\x42" * 20


def cert(serial: int, *, partition: int = 0, not_after: int = 2_000_000_000) -> CertRecord:
    return CertRecord(
        serial=serial_bytes(serial),
        issuer=ISSUER,
        status=CertStatus.GOOD,
        not_before=1_700_000_000,
        not_after=not_after,
        names=[f"www{serial}.example.co.jp"],
        organization="acct-1",
        profile="ov",
        partition=partition,
        der=b"\x30\x03\x02\x01\x01",
    )


@pytest.fixture
def store(any_store: Store) -> Store:
    return any_store


def test_reopen_keeps_everything(tmp_path: Path) -> None:
    path = tmp_path / "lmdb"
    with LmdbStore(path, create=True, map_size=1 << 28) as s:
        s.write(lambda t: t.insert_cert(cert(1001), at_us=1, actor="test"))
        s.write(
            lambda t: t.revoke(
                serial_bytes(1001),
                at=1_750_000_000,
                reason=RevocationReason.KEY_COMPROMISE,
                actor="test",
                entry_der=ENTRY,
            )
        )
        s.write(lambda t: t.insert_cert(cert(1002, partition=3), at_us=2, actor="test"))
    with LmdbStore(path) as s, s.read() as r:
        revoked = r.get_cert(serial_bytes(1001))
        assert revoked is not None
        assert revoked.status is CertStatus.REVOKED
        assert revoked.reason is RevocationReason.KEY_COMPROMISE
        assert revoked.revoked_at == 1_750_000_000
        assert r.get_cert(serial_bytes(1002)) == cert(1002, partition=3)
        [rev] = list(r.iter_revocations(ISSUER, 0))
        assert rev.serial == serial_bytes(1001)
        assert [a.action for a in r.iter_audit()] == ["issue", "revoke", "issue"]
        assert [a.seq for a in r.iter_audit()] == [1, 2, 3]


def test_the_store_is_private_to_its_owner(tmp_path: Path) -> None:
    path = tmp_path / "lmdb"
    with LmdbStore(path, create=True, map_size=1 << 24):
        pass
    modes = {p.name: p.stat().st_mode & 0o777 for p in (path, path / "data.mdb")}
    assert modes == {"lmdb": 0o700, "data.mdb": 0o600}
    # A store copied with looser modes is tightened when opened for writing.
    path.chmod(0o755)
    (path / "data.mdb").chmod(0o644)
    with LmdbStore(path, readonly=True):
        assert (path / "data.mdb").stat().st_mode & 0o777 == 0o644  # readers change nothing
    with LmdbStore(path):
        pass
    assert path.stat().st_mode & 0o777 == 0o700
    assert (path / "data.mdb").stat().st_mode & 0o777 == 0o600


def test_open_missing_environment_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="run `hanko init` first"):
        LmdbStore(tmp_path / "nothing")


def test_schema_version_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "lmdb"
    with LmdbStore(path, create=True, map_size=1 << 28) as s, s.env.begin(write=True) as txn:
        txn.put(b"schema_version", b"99", db=s._dbs[b"meta"])
    with pytest.raises(SchemaMismatch, match="schema version 99"):
        LmdbStore(path)


def read_in_other_process(store: Store, serial: int) -> list[str]:
    where, env = locator(store)
    return subprocess.run(
        [sys.executable, str(HERE / "reader_child.py"), where, serial_bytes(serial).hex()],
        capture_output=True,
        text=True,
        check=True,
        env={**env, "PYTHONPATH": str(HERE.parents[2])},
    ).stdout.split()


def test_reader_process_sees_committed_data(store: Store) -> None:
    store.write(lambda t: t.insert_cert(cert(2001), at_us=1, actor="test"))
    out = read_in_other_process(store, 2001)
    assert out == ["GOOD", "www2001.example.co.jp", "1"]
    # Data committed after the reader's environment existed is seen by its next read.
    store.write(
        lambda t: t.revoke(
            serial_bytes(2001),
            at=1,
            reason=RevocationReason.UNSPECIFIED,
            actor="t",
            entry_der=ENTRY,
        )
    )
    out = read_in_other_process(store, 2001)
    assert out == ["REVOKED", "www2001.example.co.jp", "2"]


def test_readonly_store_refuses_writes(tmp_path: Path) -> None:
    LmdbStore(tmp_path / "lmdb", create=True, map_size=1 << 28).close()
    with LmdbStore(tmp_path / "lmdb", readonly=True) as ro:
        with pytest.raises(StoreError, match="read-only"):
            ro.write(lambda t: t.next_counter("x"))
        with pytest.raises(StoreError, match="read-only"):
            ro.commit_group([lambda t: t.next_counter("x")])


def test_counters_survive_reopen_and_never_repeat(tmp_path: Path) -> None:
    path = tmp_path / "lmdb"
    seen: list[int] = []
    for _ in range(3):
        with LmdbStore(path, create=True, map_size=1 << 28) as s:
            seen += [s.write(lambda t: t.next_counter("crl:p0")) for _ in range(5)]
    assert seen == list(range(1, 16))
    with LmdbStore(path) as s:
        assert s.write(lambda t: t.raise_counter_to("crl:p0", 7)) == 15  # never down
        assert s.write(lambda t: t.raise_counter_to("crl:p0", 40)) == 40
        assert s.write(lambda t: t.next_counter("crl:p0")) == 41


def test_a_failed_transaction_changes_nothing(store: Store) -> None:
    def half_then_fail(t: WriteTxn) -> None:
        t.insert_cert(cert(3001), at_us=1, actor="test")
        t.next_counter("c")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        store.write(half_then_fail)
    with store.read() as r:
        assert r.get_cert(serial_bytes(3001)) is None
        assert r.counter("c") == 0
        assert r.counter("audit") == 0


def test_serials_never_repeat(store: Store) -> None:
    store.write(lambda t: t.insert_cert(cert(4001), at_us=1, actor="test"))
    with pytest.raises(DuplicateSerial):
        store.write(lambda t: t.insert_cert(cert(4001), at_us=2, actor="test"))
    assert store.stat()["certs"] == 1


def test_revoking_twice_returns_the_first_revocation(store: Store) -> None:
    store.write(lambda t: t.insert_cert(cert(5001), at_us=1, actor="test"))
    first, created = store.write(
        lambda t: t.revoke(
            serial_bytes(5001),
            at=100,
            reason=RevocationReason.KEY_COMPROMISE,
            actor="a",
            entry_der=ENTRY,
        )
    )
    again, created_again = store.write(
        lambda t: t.revoke(
            serial_bytes(5001),
            at=200,
            reason=RevocationReason.SUPERSEDED,
            actor="b",
            entry_der=ENTRY,
        )
    )
    assert created
    assert not created_again
    assert again == first
    assert store.stat()["revocations"] == 1
    with store.read() as r:
        assert [a.action for a in r.iter_audit()] == ["issue", "revoke"]


def test_revoking_an_unknown_serial(store: Store) -> None:
    with pytest.raises(NotFound):
        store.write(
            lambda t: t.revoke(
                serial_bytes(999),
                at=1,
                reason=RevocationReason.UNSPECIFIED,
                actor="a",
                entry_der=ENTRY,
            )
        )
    assert store.stat()["revocations"] == 0


def test_expiry_index_and_partitions(store: Store) -> None:
    def fill(t: WriteTxn) -> None:
        for i, na in enumerate([300, 100, 200]):
            t.insert_cert(cert(6000 + i, partition=i % 2, not_after=na), at_us=i, actor="t")

    store.write(fill)
    with store.read() as r:
        assert list(r.iter_expiring(250)) == [serial_bytes(6001), serial_bytes(6002)]
    for s in (6000, 6001, 6002):
        store.write(
            lambda t, s=s: t.revoke(
                serial_bytes(s),
                at=5,
                reason=RevocationReason.UNSPECIFIED,
                actor="t",
                entry_der=ENTRY,
            )
        )
    with store.read() as r:
        assert [x.serial for x in r.iter_revocations(ISSUER, 0)] == [
            serial_bytes(6000),
            serial_bytes(6002),
        ]
        assert [x.serial for x in r.iter_revocations(ISSUER, 1)] == [serial_bytes(6001)]
        assert list(r.iter_revocations(ISSUER, 2)) == []


def test_records_round_trip() -> None:
    from core.store.records import CERT

    rec = msgspec.structs.replace(
        cert(7001),
        status=CertStatus.REVOKED,
        revoked_at=9,
        reason=RevocationReason.PRIVILEGE_WITHDRAWN,
    )
    assert CERT.decode(CERT.encode(rec)) == rec


def test_group_commit_many_writers_one_commit_each_group(store: Store) -> None:
    async def main() -> None:
        writer = GroupCommitWriter(store)
        async with trio.open_nursery() as nursery:
            await nursery.start(writer.run)
            async with trio.open_nursery() as callers:
                for i in range(500):
                    callers.start_soon(
                        writer.submit,
                        lambda t, i=i: t.insert_cert(cert(8000 + i), at_us=i, actor="t"),
                    )
            stats = writer.statistics()
            assert stats.ops == 500
            assert stats.commits < 500  # writes were grouped
            assert stats.largest_group > 1
            nursery.cancel_scope.cancel()

    trio.run(main)
    assert store.stat()["certs"] == 500


def test_group_commit_isolates_a_failing_write(store: Store) -> None:
    store.write(lambda t: t.insert_cert(cert(9000), at_us=1, actor="t"))
    results: dict[int, object] = {}

    async def main() -> None:
        writer = GroupCommitWriter(store)
        async with trio.open_nursery() as nursery:
            await nursery.start(writer.run)

            async def submit(i: int) -> None:
                try:
                    await writer.submit(lambda t: t.insert_cert(cert(9000 + i), at_us=i, actor="t"))
                    results[i] = "ok"
                except DuplicateSerial as exc:
                    results[i] = exc

            async with trio.open_nursery() as callers:
                for i in range(5):
                    callers.start_soon(submit, i)
            nursery.cancel_scope.cancel()

    trio.run(main)
    assert isinstance(results[0], DuplicateSerial)
    assert [results[i] for i in range(1, 5)] == ["ok"] * 4
    assert store.stat()["certs"] == 5


def test_submit_without_a_running_writer(store: Store) -> None:
    async def main() -> None:
        with pytest.raises(StoreError, match="not running"):
            await GroupCommitWriter(store).submit(lambda t: t.next_counter("x"))

    trio.run(main)


def test_kill_9_loses_no_acknowledged_write(tmp_path: Path) -> None:
    path = tmp_path / "lmdb"
    child = subprocess.Popen(
        [sys.executable, str(HERE / "writer_child.py"), str(path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    try:
        assert child.stdout.readline().strip() == "READY"
        acked = []
        while len(acked) < 3000:
            line = child.stdout.readline()
            assert line, "writer exited early"
            acked.append(line.strip())
        os.kill(child.pid, signal.SIGKILL)
        # Whatever was acknowledged before the kill but is still in the pipe counts too.
        acked += [line.strip() for line in child.stdout.read().splitlines() if line.strip()]
    finally:
        child.kill()
        child.wait()
    assert child.returncode == -signal.SIGKILL
    with LmdbStore(path) as s, s.read() as r:
        for serial in acked:
            rec = r.get_cert(bytes.fromhex(serial))
            assert rec is not None
            assert rec.status is CertStatus.REVOKED, serial
        revoked = s.stat()["revocations"]
    # The kill landed mid-stream: the writer was not done (the test really interrupted it).
    assert len(acked) <= revoked < 200_000


def test_a_domain_needs_its_organization(store: Store) -> None:
    from core.store import DomainRecord, OrgRecord

    domain = DomainRecord(org_id="acme", domain="example.co.jp", validated_at=1, method="dns-txt")
    with pytest.raises(NotFound, match="no organization 'acme'"):
        store.write(lambda t: t.put_domain(domain, at_us=1, actor="t"))
    assert store.stat()["domains"] == 0
    assert store.stat()["audit"] == 0
    org = OrgRecord(
        id="acme",
        level="ov",
        organization="Acme",
        country="JP",
        state=None,
        locality="Minato-ku",
        validated_at=1,
    )
    store.write(lambda t: t.put_org(org, at_us=1, actor="t"))
    store.write(lambda t: t.put_domain(domain, at_us=2, actor="t"))
    with store.read() as r:
        assert [d.domain for d in r.iter_domains("acme")] == ["example.co.jp"]


def test_ocsp_due_walks_with_a_cursor(store: Store) -> None:
    """Soonest first, bounded by time and count, and resumable past the last key read
    (the refresher's batches in flight are never handed out twice)."""

    def fill(txn: WriteTxn) -> None:
        for n, at in [(11, 500), (12, 100), (13, 300), (14, 300), (15, 900)]:
            txn.insert_cert(cert(n), at_us=1, actor="test")
            txn.schedule_ocsp(serial_bytes(n), at)

    store.write(fill)
    with store.read() as txn:
        first = txn.ocsp_due(600, 2)
        assert [s for _, s in first] == [serial_bytes(12), serial_bytes(13)]
        rest = txn.ocsp_due(600, 10, after=first[-1][0])
        assert [s for _, s in rest] == [serial_bytes(14), serial_bytes(11)]  # not 15: at 900
        assert txn.ocsp_due(600, 10, after=rest[-1][0]) == []
        assert txn.ocsp_due(100, 10) == []  # "before" is exclusive
    # Rescheduling moves a serial's one due entry: it is not listed twice.
    store.write(lambda t: t.schedule_ocsp(serial_bytes(12), 950))
    with store.read() as txn:
        assert [s for _, s in txn.ocsp_due(1000, 10)] == [
            serial_bytes(n) for n in (13, 14, 11, 15, 12)
        ]


def test_put_ocsp_keeps_one_envelope_per_responder_key(store: Store) -> None:
    """The envelope is stored with the first record that needs it, replaced when the
    responder's certificate for that key is renewed, and a nested transaction that rolls
    back takes its envelope with it (the next record stores it again)."""
    key = b"k" * 20
    env1 = OcspEnvelope(key_hash=key, encoded=b"first", since=100)
    env2 = OcspEnvelope(key_hash=key, encoded=b"second", since=200)

    def record(env: OcspEnvelope) -> OcspRecord:
        return OcspRecord(
            this_update=1, next_update=2, refresh_at=3, signed={1: b"signed"}, envelope=env
        )

    def fail_after_put(txn: WriteTxn) -> None:
        txn.put_ocsp(serial_bytes(21), record(env1))
        raise StoreError("rolled back")

    def op(txn: WriteTxn) -> None:
        for n in (21, 22):
            txn.insert_cert(cert(n), at_us=1, actor="test")
        assert isinstance(txn.attempt(fail_after_put), Failed)
        assert txn.get_ocsp_envelope(key) is None
        txn.put_ocsp(serial_bytes(22), record(env1))

    store.write(op)
    with store.read() as txn:
        assert txn.get_ocsp_envelope(key) == b"first"
        assert txn.get_ocsp(serial_bytes(21)) is None
        rec = txn.get_ocsp(serial_bytes(22))
        assert rec is not None
        assert rec.signed == {1: b"signed"}
        assert rec.envelope is None  # not part of the record's own bytes
    store.write(lambda t: t.put_ocsp(serial_bytes(22), record(env2)))
    with store.read() as txn:
        assert txn.get_ocsp_envelope(key) == b"second"


def test_a_renewed_envelope_is_never_replaced_by_an_older_one(store: Store) -> None:
    """`hanko ca renew-responder` stores the renewed certificate's envelope while the
    core, not caught up yet, goes on storing the old one with each batch: the later
    certificate (by notBefore) stays. Responders learn of a replacement by the
    envelope generation, which moves only then."""
    key = b"r" * 20
    old = OcspEnvelope(key_hash=key, encoded=b"old", since=100)
    new = OcspEnvelope(key_hash=key, encoded=b"new", since=101)

    def generation() -> int:
        with store.read() as txn:
            return txn.counter(ENVELOPE_GENERATION_KEY.decode())

    def envelope() -> bytes | None:
        with store.read() as txn:
            return txn.get_ocsp_envelope(key)

    assert store.write(lambda t: t.put_ocsp_envelope(old)) is True
    first = generation()
    assert store.write(lambda t: t.put_ocsp_envelope(old)) is False
    assert store.write(lambda t: t.put_ocsp_envelope(new)) is True
    assert envelope() == b"new"
    moved = generation()
    assert moved != first
    store.write(lambda t: t.put_ocsp(serial_bytes(1), OcspRecord(
        this_update=1, next_update=2, refresh_at=3, signed={1: b"s"}, envelope=old
    )))  # fmt: skip
    assert store.write(lambda t: t.put_ocsp_envelope(old)) is False
    same_second = OcspEnvelope(key_hash=key, encoded=b"other", since=101)
    assert store.write(lambda t: t.put_ocsp_envelope(same_second)) is False
    assert envelope() == b"new"
    assert generation() == moved


def test_put_ocsp_many_moves_each_due_entry_and_stores_the_envelope_once(store: Store) -> None:
    key = b"k" * 20
    env = OcspEnvelope(key_hash=key, encoded=b"envelope")

    def record(at: int) -> OcspRecord:
        return OcspRecord(
            this_update=1, next_update=2, refresh_at=at, signed={1: b"r%d" % at}, envelope=env
        )

    def fill(txn: WriteTxn) -> None:
        for n in (31, 32, 33):
            txn.insert_cert(cert(n), at_us=1, actor="test")
        txn.put_ocsp(serial_bytes(31), record(100))  # already has a response due at 100

    store.write(fill)
    stored = store.write(
        lambda t: t.put_ocsp_many([(serial_bytes(n), record(500 + n)) for n in (31, 32, 33)])
    )
    assert stored == 3
    with store.read() as txn:
        # One due entry each, at the new times: 31's entry at 100 moved, not duplicated.
        assert txn.ocsp_due(10_000, 10) == [
            (due_key(500 + n, serial_bytes(n)), serial_bytes(n)) for n in (31, 32, 33)
        ]
        for n in (31, 32, 33):
            rec = txn.get_ocsp(serial_bytes(n))
            assert rec is not None
            assert (rec.refresh_at, rec.signed) == (500 + n, {1: b"r%d" % (500 + n)})
        assert txn.get_ocsp_envelope(key) == b"envelope"
    assert store.write(lambda t: t.put_ocsp_many([])) == 0


def test_the_status_view_reads_a_cert_record_in_place(store: Store) -> None:
    # Positions, not names, decode an array-like record: a field added or moved in
    # CertRecord ahead of the view's last field must move in the view too.
    record_fields = CertRecord.__struct_fields__
    view_fields = CertStatusView.__struct_fields__
    assert record_fields[: len(view_fields)] == view_fields
    revoked = msgspec.structs.replace(
        cert(41),
        status=CertStatus.REVOKED,
        revoked_at=1_800_000_000,
        reason=RevocationReason.KEY_COMPROMISE,
        license="lic-1",
        charged=90,
    )

    def fill(txn: WriteTxn) -> None:
        txn.insert_cert(cert(40), at_us=1, actor="test")
        txn.insert_cert(revoked, at_us=1, actor="test")

    store.write(fill)
    with store.read() as txn:
        for rec in (cert(40), revoked):
            view = txn.get_cert_status(rec.serial)
            assert view is not None
            got = (view.serial, view.status, view.not_after, view.revoked_at, view.reason)
            assert got == (rec.serial, rec.status, rec.not_after, rec.revoked_at, rec.reason)
        assert txn.get_cert_status(serial_bytes(49)) is None


def _revoke(serial: int) -> Callable[[WriteTxn], object]:
    return lambda t: t.revoke(
        serial_bytes(serial), at=1, reason=RevocationReason.UNSPECIFIED, actor="t", entry_der=ENTRY
    )


def test_status_generation_moves_with_every_certificate_write(store: Store) -> None:
    """The refresher skips re-reading statuses while the generation stands still, so
    every write of a certificate record must move it, and nothing else need."""

    def generation() -> int:
        with store.read() as r:
            return r.status_generation()

    g0 = generation()
    store.write(lambda t: t.insert_cert(cert(9001), at_us=1, actor="t"))
    g1 = generation()
    assert g1 > g0
    with store.read() as r:
        rec = r.get_cert(serial_bytes(9001))
    assert rec is not None
    store.write(lambda t: t.put_cert(msgspec.structs.replace(rec, charged=3)))
    g2 = generation()
    assert g2 > g1
    store.write(_revoke(9001))
    g3 = generation()
    assert g3 > g2
    # Revoking again changes no record; OCSP writes change no status.
    store.write(_revoke(9001))
    store.write(
        lambda t: t.put_ocsp(
            serial_bytes(9001),
            OcspRecord(this_update=1, next_update=2, refresh_at=3, signed={1: b"r"}),
        )
    )
    assert generation() == g3

    # A write rolled back takes its move back with it.
    def insert_then_fail(t: WriteTxn) -> None:
        t.insert_cert(cert(9002), at_us=1, actor="t")
        raise ValueError("no")

    assert isinstance(store.write(lambda t: t.attempt(insert_then_fail)), Failed)
    assert generation() == g3

    # It lives in the store: a writer in another process moves it as well.
    store.write(lambda t: t.insert_cert(cert(9003), at_us=1, actor="t"))
    g4 = generation()
    child = (
        "import sys; from pathlib import Path; "
        "from core.store import serial_bytes; "
        "from core.base.reasons import RevocationReason; "
        "from tests.stores import reopen; "
        "s = reopen(sys.argv[1]); "
        "s.write(lambda t: t.revoke(serial_bytes(9003), at=1, actor='c', "
        "reason=RevocationReason.UNSPECIFIED, entry_der=bytes.fromhex(sys.argv[2]))); s.close()"
    )
    where, env = locator(store)
    subprocess.run(
        [sys.executable, "-c", child, where, ENTRY.hex()],
        check=True,
        timeout=60,
        env={**env, "PYTHONPATH": str(HERE.parents[2])},
    )
    assert generation() > g4
