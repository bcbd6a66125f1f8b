"""A PKCS#11 worker process: one library instance, one login, one session, one thread.

Started by signer.pool with pipes on stdin/stdout. Reads a WorkerInit, logs in and
finds its keys (answering WorkerReady or WorkerFailed), then signs SignBatch after
SignBatch until stdin closes. Each message gets its own signature or its own error.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable

from core.base.errors import HankoError, SignerError
from signer.algorithms import PREHASHED, SignAlgorithm
from signer.messages import (
    TO_WORKER,
    BatchResult,
    SignBatch,
    WorkerFailed,
    WorkerInit,
    WorkerReady,
    frame,
)


def _read_exact(fd: int, n: int) -> bytes | None:
    chunks = []
    while n:
        chunk = os.read(fd, n)
        if not chunk:
            return None
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _read_message(fd: int) -> object | None:
    header = _read_exact(fd, 4)
    if header is None:
        return None
    body = _read_exact(fd, int.from_bytes(header, "big"))
    return None if body is None else TO_WORKER.decode(body)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def main() -> int:
    # Ctrl-C on `hanko serve` reaches the whole process group; the pool shuts workers
    # down by closing their stdin, after in-flight batches are answered.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    in_fd = 0
    out_fd = os.dup(1)
    os.dup2(2, 1)  # anything a library prints goes to stderr, never into the frames

    init = _read_message(in_fd)
    if not isinstance(init, WorkerInit):
        return 2
    from signer.token import TokenSession  # imported here: loads PKCS#11 bindings

    try:
        session = TokenSession(
            init.module, init.token_label, init.pin, softhsm_conf=init.softhsm_conf
        )
        key_types = {label: session.key_type(label).value for label in init.key_labels}
    except HankoError as exc:
        _write_all(out_fd, frame(WorkerFailed(exc.message)))
        return 3
    _write_all(out_fd, frame(WorkerReady(os.getpid(), key_types)))

    signers: dict[tuple[str, int], Callable[[bytes], bytes]] = {}

    def signer_for(label: str, alg: int) -> Callable[[bytes], bytes]:
        try:
            algorithm = SignAlgorithm(alg & ~PREHASHED)
        except ValueError:
            raise SignerError(f"unknown signature algorithm {alg}") from None
        fn = signers[(label, alg)] = session.signer_for(
            label, algorithm, prehashed=bool(alg & PREHASHED)
        )
        return fn

    while True:
        msg = _read_message(in_fd)
        if msg is None:
            return 0
        if not isinstance(msg, SignBatch):
            continue
        signatures: list[bytes] = []
        errors: dict[int, str] = {}
        append = signatures.append
        for label, alg, messages in msg.groups:
            try:
                fn = signers.get((label, alg)) or signer_for(label, alg)
            except HankoError as exc:
                for _ in messages:
                    errors[len(signatures)] = exc.message
                    append(b"")
                continue
            for data in messages:
                try:
                    append(fn(data))
                except HankoError as exc:
                    errors[len(signatures)] = exc.message
                    append(b"")
        _write_all(out_fd, frame(BatchResult(msg.batch_id, signatures, errors)))


if __name__ == "__main__":
    sys.exit(main())
