"""Messages between the core and its PKCS#11 worker processes, and their framing.

Frames are a 4-byte big-endian length and a msgpack body. Messages are array-like
tagged Structs: a 256-item batch of ECDSA digests costs a few microseconds to encode.
"""

from __future__ import annotations

import msgspec

MAX_FRAME = 64 << 20  # a batch of 4096 items of 16 KiB; anything larger is a bug


class WorkerInit(msgspec.Struct, tag="init", array_like=True, frozen=True):
    module: str
    token_label: str
    pin: str
    softhsm_conf: str | None
    key_labels: list[str]


class WorkerReady(msgspec.Struct, tag="ready", array_like=True, frozen=True):
    pid: int
    key_types: dict[str, str]


class WorkerFailed(msgspec.Struct, tag="failed", array_like=True, frozen=True):
    message: str


class SignBatch(msgspec.Struct, tag="batch", array_like=True, frozen=True):
    batch_id: int
    # (key label, SignAlgorithm value, messages): one group per run of messages signed
    # with the same key and algorithm (a refresh batch is one group of hundreds). The
    # label once per group rather than per message: a third of the worker's own time
    # per signature went to decoding it and looking its signer up again.
    groups: list[tuple[str, int, list[bytes]]]


class BatchResult(msgspec.Struct, tag="result", array_like=True, frozen=True):
    batch_id: int
    signatures: list[bytes]  # one per message, groups laid end to end; b"" where it failed
    errors: dict[int, str]  # message index (in that flat order) -> reason


ToWorker = WorkerInit | SignBatch
FromWorker = WorkerReady | WorkerFailed | BatchResult

ENCODER = msgspec.msgpack.Encoder()
TO_WORKER = msgspec.msgpack.Decoder(ToWorker)
FROM_WORKER = msgspec.msgpack.Decoder(FromWorker)


def frame(message: msgspec.Struct) -> bytes:
    body = ENCODER.encode(message)
    return len(body).to_bytes(4, "big") + body


class FrameBuffer:
    """Accumulates bytes from a stream and yields complete frame bodies."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes | bytearray) -> list[bytes]:
        self._buf += data
        frames = []
        while len(self._buf) >= 4:
            size = int.from_bytes(self._buf[:4], "big")
            if size > MAX_FRAME:
                raise ValueError(f"frame of {size} bytes exceeds the {MAX_FRAME} limit")
            if len(self._buf) < 4 + size:
                break
            frames.append(bytes(self._buf[4 : 4 + size]))
            del self._buf[: 4 + size]
        return frames
