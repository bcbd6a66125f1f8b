"""The batched signer against real SoftHSM tokens, through real worker processes."""

from __future__ import annotations

import functools
import hashlib
import os
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import msgspec
import pytest
import trio
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from core.base.errors import HsmUnavailable, SignerClosed, SignerError, SignerOverloaded
from core.base.units import Duration
from core.ca.bootstrap import ISSUING_LABEL as ISSUING
from core.ca.bootstrap import OCSP_LABEL
from core.cmd.wiring import signer_pool
from core.config import Config
from signer.algorithms import SignAlgorithm
from signer.api import Priority
from signer.pool import SignerPool
from tests.conftest import DevCA


def public_key(ca: DevCA) -> ec.EllipticCurvePublicKey | rsa.RSAPublicKey:
    cert = x509.load_pem_x509_certificate((ca.directory / "ca" / "issuing.pem").read_bytes())
    key = cert.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey)
    return key


def verify(
    key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey,
    alg: SignAlgorithm,
    signature: bytes,
    data: bytes,
) -> None:
    h: hashes.HashAlgorithm = hashes.SHA384() if alg.hash_name == "sha384" else hashes.SHA256()
    if isinstance(key, ec.EllipticCurvePublicKey):
        key.verify(signature, data, ec.ECDSA(h))
    elif alg.is_pss:
        key.verify(signature, data, padding.PSS(padding.MGF1(h), h.digest_size), h)
    else:
        key.verify(signature, data, padding.PKCS1v15(), h)


@asynccontextmanager
async def running(pool: SignerPool) -> AsyncIterator[SignerPool]:
    async with trio.open_nursery() as nursery:
        await nursery.start(pool.run)
        yield pool
        nursery.cancel_scope.cancel()


def with_signer(cfg: Config, **changes: object) -> Config:
    return msgspec.structs.replace(cfg, signer=msgspec.structs.replace(cfg.signer, **changes))


CASES = [
    ("dev_ca", SignAlgorithm.ECDSA_SHA256),
    ("p384_ca", SignAlgorithm.ECDSA_SHA384),
    ("rsa_ca", SignAlgorithm.RSA_PKCS1_SHA256),
    ("rsa_ca", SignAlgorithm.RSA_PKCS1_SHA384),
    ("rsa_ca", SignAlgorithm.RSA_PSS_SHA256),
    ("rsa_ca", SignAlgorithm.RSA_PSS_SHA384),
]


@pytest.mark.parametrize(("ca_fixture", "alg"), CASES, ids=[a.slug for _, a in CASES])
def test_every_algorithm_verifies(
    ca_fixture: str, alg: SignAlgorithm, request: pytest.FixtureRequest
) -> None:
    ca: DevCA = request.getfixturevalue(ca_fixture)
    key = public_key(ca)
    messages = [os.urandom(50 + i) for i in range(20)]

    async def main() -> list[bytes | SignerError]:
        async with running(signer_pool(ca.config, workers=1)) as pool:
            single = await pool.sign(ISSUING, alg, messages[0])
            many = await pool.sign_many([(ISSUING, alg, m) for m in messages[1:]])
            return [single, *many]

    signatures = trio.run(main)
    for message, signature in zip(messages, signatures, strict=True):
        assert isinstance(signature, bytes)
        verify(key, alg, signature, message)
    # Sanity: the verification above can fail.
    with pytest.raises(InvalidSignature):
        verify(key, alg, signatures[0], messages[1])


DIGEST_CASES = [c for c in CASES if not c[1].is_pss]


@pytest.mark.parametrize(("ca_fixture", "alg"), DIGEST_CASES, ids=[a.slug for _, a in DIGEST_CASES])
def test_digest_signing_verifies_as_the_whole_message(
    ca_fixture: str, alg: SignAlgorithm, request: pytest.FixtureRequest
) -> None:
    """What a CRL build uses: the document is hashed at home, only the digest travels."""
    ca: DevCA = request.getfixturevalue(ca_fixture)
    message = os.urandom(3 << 20)
    digest = hashlib.new(alg.hash_name, message).digest()

    async def main() -> tuple[bytes, str, str]:
        async with running(signer_pool(ca.config, workers=1)) as pool:
            signature = await pool.sign_digest(ISSUING, alg, digest)
            with pytest.raises(SignerError) as short:
                await pool.sign_digest(ISSUING, alg, digest[:-1])
            with pytest.raises(SignerError) as pss:
                await pool.sign_digest(ISSUING, SignAlgorithm.RSA_PSS_SHA256, digest)
            return signature, short.value.message, pss.value.message

    signature, short, pss = trio.run(main)
    verify(public_key(ca), alg, signature, message)
    assert "digest is" in short
    assert "cannot sign" in pss or "not offered" in pss


def test_hundreds_of_concurrent_callers_each_get_their_own_signature(dev_ca: DevCA) -> None:
    key = public_key(dev_ca)
    results: dict[int, bytes] = {}
    messages = {i: f"caller {i}".encode() * (1 + i % 7) for i in range(400)}

    async def main() -> None:
        async with running(signer_pool(dev_ca.config, workers=2)) as pool:

            async def caller(i: int) -> None:
                results[i] = await pool.sign(ISSUING, SignAlgorithm.ECDSA_SHA256, messages[i])

            async with trio.open_nursery() as nursery:
                for i in messages:
                    nursery.start_soon(caller, i)
            stats = pool.statistics()
            assert stats.signatures == 400
            assert stats.largest_batch > 1  # requests were batched
            assert all(w.signatures > 0 for w in stats.workers)  # both workers worked

    trio.run(main)
    for i, message in messages.items():
        verify(key, SignAlgorithm.ECDSA_SHA256, results[i], message)


def test_killing_a_worker_mid_load_loses_no_request(dev_ca: DevCA) -> None:
    key = public_key(dev_ca)
    results: dict[int, bytes] = {}
    count = 3000

    async def main() -> None:
        pool = signer_pool(with_signer(dev_ca.config, batch_max=32), workers=2)
        async with running(pool):

            async def caller(i: int) -> None:
                results[i] = await pool.sign(ISSUING, SignAlgorithm.ECDSA_SHA256, b"%d" % i)

            async def killer() -> None:
                # Mid-load, and while this worker holds batches: they must not be lost.
                while True:
                    victim = pool.statistics().workers[0]
                    if pool.statistics().signatures >= count // 4 and victim.in_flight_batches:
                        break
                    await trio.sleep(0)
                assert victim.pid is not None
                os.kill(victim.pid, signal.SIGKILL)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(killer)
                for i in range(count):
                    nursery.start_soon(caller, i)
            stats = pool.statistics()
            assert stats.restarts >= 1
            assert stats.retried >= 1  # the killed worker's in-flight batch was retried
            assert stats.workers[0].alive

    trio.run(main)
    assert len(results) == count
    for i in range(0, count, 97):
        verify(key, SignAlgorithm.ECDSA_SHA256, results[i], b"%d" % i)


def _start_error(cfg: Config, labels: tuple[str, ...] | None = None) -> str:
    async def main() -> None:
        async with running(signer_pool(cfg, workers=1, key_labels=labels)):
            pass

    messages: list[str] = []
    try:
        trio.run(main)
    except* HsmUnavailable as group:  # raised through the test's nursery
        messages = [e.message for e in group.exceptions if isinstance(e, HsmUnavailable)]
    assert len(messages) == 1, "the pool should have refused to start"
    return messages[0]


def test_wrong_pin_is_a_readable_start_up_error(fresh_ca: DevCA) -> None:
    pin = fresh_ca.directory / "secrets" / "hsm.pin"
    pin.chmod(0o600)
    pin.write_text("not-the-pin\n")
    assert _start_error(fresh_ca.config) == "token 'hanko' refused login: wrong PIN"


def test_missing_key_label_is_a_readable_start_up_error(dev_ca: DevCA) -> None:
    message = _start_error(dev_ca.config, labels=(ISSUING, "no-such-key"))
    assert message == "no private key labelled 'no-such-key' on token 'hanko'"


def test_one_bad_item_fails_alone(dev_ca: DevCA) -> None:
    async def main() -> list[bytes | SignerError]:
        async with running(signer_pool(dev_ca.config, workers=1)) as pool:
            return await pool.sign_many(
                [
                    (ISSUING, SignAlgorithm.ECDSA_SHA256, b"a"),
                    (ISSUING, SignAlgorithm.RSA_PKCS1_SHA256, b"b"),  # wrong key type
                    ("no-such-key", SignAlgorithm.ECDSA_SHA256, b"c"),
                    (ISSUING, SignAlgorithm.ECDSA_SHA256, b"d"),
                ]
            )

    a, b, c, d = trio.run(main)
    verify(public_key(dev_ca), SignAlgorithm.ECDSA_SHA256, a, b"a")  # type: ignore[arg-type]
    verify(public_key(dev_ca), SignAlgorithm.ECDSA_SHA256, d, b"d")  # type: ignore[arg-type]
    assert isinstance(b, SignerError)
    assert "cannot sign rsa-pkcs1-sha256" in b.message
    assert isinstance(c, SignerError)
    assert "no private key labelled 'no-such-key'" in c.message


def test_full_queue_waits_or_says_overloaded(dev_ca: DevCA) -> None:
    cfg = with_signer(dev_ca.config, batch_max=1, bulk_batch_max=1, queue_max=4)

    async def main() -> None:
        async with running(signer_pool(cfg, workers=1, pipeline=1)) as pool:
            done: list[int] = []

            async def waiting(i: int) -> None:
                await pool.sign(ISSUING, SignAlgorithm.ECDSA_SHA256, b"x")
                done.append(i)

            async with trio.open_nursery() as nursery:
                for i in range(40):
                    nursery.start_soon(waiting, i)
                while pool.statistics().queued < 4:
                    await trio.sleep(0)
                assert pool.statistics().queued <= 4
                with pytest.raises(SignerOverloaded, match="queue is full"):
                    await pool.sign(ISSUING, SignAlgorithm.ECDSA_SHA256, b"y", wait=False)
            assert len(done) == 40  # the waiting callers were all served

    trio.run(main)


def test_callers_waiting_for_room_are_served_in_order(dev_ca: DevCA) -> None:
    """Bulk callers bigger than the free room wait in line; a cancelled one leaves
    the line without losing anyone's turn, and the others get in as room frees up."""
    cfg = with_signer(dev_ca.config, batch_max=1, bulk_batch_max=1, queue_max=8)
    item = (ISSUING, SignAlgorithm.ECDSA_SHA256, b"m")

    async def main() -> list[str]:
        order: list[str] = []
        async with running(signer_pool(cfg, workers=1, pipeline=1)) as pool:

            async def bulk(name: str, n: int) -> None:
                sigs = await pool.sign_many([item] * n)
                assert all(isinstance(s, bytes) for s in sigs)
                order.append(name)

            async def in_line(n: int) -> None:
                with trio.fail_after(20):
                    while pool.statistics().waiting_for_room < n:
                        await trio.sleep(0)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(bulk, "first", 8)
                while pool.statistics().queued == 0:
                    await trio.sleep(0)
                # trio runs new tasks in random order: start each once the last is in line.
                nursery.start_soon(bulk, "second", 6)
                await in_line(1)
                cancelled = trio.CancelScope()

                async def gives_up() -> None:
                    with cancelled:
                        await bulk("never", 7)

                nursery.start_soon(gives_up)
                await in_line(2)
                nursery.start_soon(bulk, "third", 3)
                await in_line(3)
                cancelled.cancel()
            assert pool.statistics().waiting_for_room == 0
            # Nothing is left promised to a caller that went away: a full-size job fits.
            with trio.fail_after(20):
                await pool.sign_many([item] * 8)
        return order

    order = trio.run(main)
    assert "never" not in order
    assert order.index("second") < order.index("third")


def test_interactive_requests_overtake_bulk(dev_ca: DevCA) -> None:
    cfg = with_signer(dev_ca.config, batch_max=1, bulk_batch_max=1)
    order: list[str] = []

    async def main() -> None:
        async with running(signer_pool(cfg, workers=1, pipeline=1)) as pool:

            async def bulk() -> None:
                results = await pool.sign_many(
                    [(ISSUING, SignAlgorithm.ECDSA_SHA256, b"bulk")] * 200, priority=Priority.BULK
                )
                assert all(isinstance(r, bytes) for r in results)
                order.append("bulk")

            async def interactive() -> None:
                await trio.sleep(0.01)  # the bulk job is queued and under way
                assert pool.statistics().queued_by_priority["bulk"] > 100
                await pool.sign(ISSUING, SignAlgorithm.ECDSA_SHA256, b"now")
                order.append("interactive")
                assert pool.statistics().queued_by_priority["bulk"] > 50

            async with trio.open_nursery() as nursery:
                nursery.start_soon(bulk)
                nursery.start_soon(interactive)

    trio.run(main)
    assert order == ["interactive", "bulk"]


def test_bulk_batches_grow_to_bulk_batch_max_and_interactive_ones_do_not(
    dev_ca: DevCA,
) -> None:
    cfg = with_signer(dev_ca.config, batch_max=4, bulk_batch_max=32)
    item = (ISSUING, SignAlgorithm.ECDSA_SHA256, b"m")

    async def largest_batch(interactive: int, refresh: int) -> int:
        """Queue both kinds before the one worker takes its first batch."""
        async with running(signer_pool(cfg, workers=1, pipeline=1)) as pool:
            async with trio.open_nursery() as nursery:
                if refresh:
                    many = functools.partial(pool.sign_many, priority=Priority.REFRESH)
                    nursery.start_soon(many, [item] * refresh)
                for _ in range(interactive):
                    nursery.start_soon(pool.sign, *item)
            assert pool.statistics().signatures == interactive + refresh
            return pool.statistics().largest_batch

    assert 1 < trio.run(largest_batch, 40, 0) <= 4
    assert trio.run(largest_batch, 0, 200) == 32
    # One interactive request among 10 refresh ones: the batch that takes it is held to
    # batch_max (it and 3 others), and the 7 left go together: never one batch of 11.
    assert trio.run(largest_batch, 1, 10) == 7


def test_runs_of_keys_split_across_batches_keep_their_places(
    dev_ca: DevCA,
) -> None:
    """sign_many queues one request per run of the same key and algorithm, and batches
    take runs in parts: every slot still gets its own message's signature, and a run
    for a key the token lacks fails in its own slots only."""
    cfg = with_signer(dev_ca.config, batch_max=3, bulk_batch_max=5)
    responder = x509.load_pem_x509_certificate(
        (dev_ca.directory / "ca" / "ocsp-responder.pem").read_bytes()
    ).public_key()
    keys = {ISSUING: public_key(dev_ca), OCSP_LABEL: responder}
    runs = [
        (ISSUING, SignAlgorithm.ECDSA_SHA256, 7),
        (OCSP_LABEL, SignAlgorithm.ECDSA_SHA256, 4),
        ("no-such-key", SignAlgorithm.ECDSA_SHA256, 3),
        (ISSUING, SignAlgorithm.ECDSA_SHA256, 6),
        (OCSP_LABEL, SignAlgorithm.ECDSA_SHA256, 2),
        (ISSUING, SignAlgorithm.ECDSA_SHA256, 1),
    ]
    items = [(label, alg, os.urandom(40)) for label, alg, n in runs for _ in range(n)]

    async def main() -> tuple[list[bytes | SignerError], int]:
        async with running(signer_pool(cfg, workers=2)) as pool:
            results = await pool.sign_many(items, priority=Priority.REFRESH)
            return results, pool.statistics().errors

    results, errors = trio.run(main)
    assert len(results) == len(items)
    assert errors == 3
    for (label, alg, data), result in zip(items, results, strict=True):
        if label == "no-such-key":
            assert isinstance(result, SignerError)
            assert "no-such-key" in str(result)
            continue
        assert isinstance(result, bytes)
        key = keys[label]
        assert isinstance(key, ec.EllipticCurvePublicKey)
        verify(key, alg, result, data)
    # Sanity: a signature in another slot does not verify (the check can fail).
    other = results[1]
    assert isinstance(other, bytes)
    with pytest.raises(InvalidSignature):
        verify(keys[ISSUING], SignAlgorithm.ECDSA_SHA256, other, items[0][2])


def test_cancelled_caller_does_not_disturb_others(dev_ca: DevCA) -> None:
    async def main() -> None:
        async with running(signer_pool(with_signer(dev_ca.config, batch_max=4), workers=1)) as pool:
            with trio.move_on_after(0):
                await pool.sign(ISSUING, SignAlgorithm.ECDSA_SHA256, b"gone")
            sigs = await pool.sign_many([(ISSUING, SignAlgorithm.ECDSA_SHA256, b"x")] * 10)
            assert all(isinstance(s, bytes) for s in sigs)

    trio.run(main)


def test_requests_still_queued_when_the_pool_stops_fail_and_are_counted(dev_ca: DevCA) -> None:
    results: list[bytes | SignerError] = []

    async def main() -> None:
        pool = signer_pool(with_signer(dev_ca.config, batch_max=1), workers=1)
        scope = trio.CancelScope()

        async def run_pool(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            with scope:
                await pool.run(task_status=task_status)

        async def caller() -> None:
            results.extend(
                await pool.sign_many([(ISSUING, SignAlgorithm.ECDSA_SHA256, b"q")] * 2000)
            )

        async with trio.open_nursery() as nursery:
            await nursery.start(run_pool)
            nursery.start_soon(caller)
            await trio.sleep(0.01)  # one worker, one signature a batch: most still queued
            scope.cancel()
        failed = [r for r in results if isinstance(r, SignerError)]
        assert len(results) == 2000
        assert failed
        assert all(isinstance(r, SignerClosed) for r in failed)
        assert pool.statistics().errors == len(failed)
        assert pool.statistics().queued == 0

    trio.run(main)


def test_statistics_shape(dev_ca: DevCA) -> None:
    async def main() -> None:
        async with running(signer_pool(dev_ca.config, workers=2)) as pool:
            await pool.sign_many([(ISSUING, SignAlgorithm.ECDSA_SHA256, b"s")] * 50)
            stats = pool.statistics()
            assert stats.signatures == 50
            assert stats.errors == 0
            assert stats.queued == 0
            assert stats.mean_batch == pytest.approx(50 / stats.batches)
            assert [w.slot for w in stats.workers] == [0, 1]
            assert all(w.alive and w.pid for w in stats.workers)
            assert sum(w.signatures for w in stats.workers) == 50

    trio.run(main)


def test_workers_exit_when_the_pool_stops(dev_ca: DevCA) -> None:
    pids: list[int] = []

    async def main() -> None:
        async with running(signer_pool(dev_ca.config, workers=2)) as pool:
            pids.extend(w.pid for w in pool.statistics().workers if w.pid)

    trio.run(main)
    assert len(pids) == 2
    for pid in pids:
        assert (
            not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
        )


def test_batch_delay_from_config(dev_ca: DevCA) -> None:
    cfg = with_signer(dev_ca.config, batch_delay=Duration("2ms"))
    assert signer_pool(cfg)._batch_delay == pytest.approx(0.002)
    _: Callable[..., object] = signer_pool
