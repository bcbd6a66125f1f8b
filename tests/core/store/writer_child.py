"""A writer process for the crash test: seeds certificates, then revokes them through
the group-commit writer from many concurrent tasks, printing each serial only after
its commit was acknowledged. The test kills it with SIGKILL mid-stream."""

import datetime as dt
import sys
from pathlib import Path

import trio

from core.base.reasons import RevocationReason
from core.store import CertRecord, CertStatus, GroupCommitWriter, LmdbStore, serial_bytes
from crl.encoder import revoked_entry

# Any well-formed entry: these tests are about the store, the CRL tests about entries.
ENTRY = revoked_entry(1, dt.datetime(2026, 1, 1, tzinfo=dt.UTC), RevocationReason.UNSPECIFIED)

COUNT = 200_000


def main() -> None:
    store = LmdbStore(Path(sys.argv[1]), create=True, map_size=1 << 30)
    serials = [serial_bytes(0x7000_0000 + i) for i in range(COUNT)]

    def seed(txn):  # type: ignore[no-untyped-def]
        for i, serial in enumerate(serials):
            txn.insert_cert(
                CertRecord(
                    serial=serial,
                    issuer=b"\x01" * 20,
                    status=CertStatus.GOOD,
                    not_before=0,
                    not_after=2_000_000_000,
                    names=[f"h{i}.example.com"],
                    organization="a",
                    profile="ov",
                    partition=0,
                    der=b"\x30\x00",
                ),
                at_us=0,
                actor="seed",
            )

    store.write(seed)
    print("READY", flush=True)
    it = iter(serials)

    async def run() -> None:
        writer = GroupCommitWriter(store)
        async with trio.open_nursery() as nursery:
            await nursery.start(writer.run)

            async def caller() -> None:
                for serial in it:

                    def op(txn, serial=serial):  # type: ignore[no-untyped-def]
                        return txn.revoke(
                            serial,
                            at=1_800_000_000,
                            reason=RevocationReason.SUPERSEDED,
                            actor="child",
                            entry_der=ENTRY,
                        )

                    await writer.submit(op)
                    sys.stdout.write(serial.hex() + "\n")
                    sys.stdout.flush()

            for _ in range(64):
                nursery.start_soon(caller)

    trio.run(run)


if __name__ == "__main__":
    main()
