"""`hanko ocsp export`: each live certificate's current response as a file, for web
servers that staple from files (nginx `ssl_stapling_file`, Apache, HAProxy)."""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

from core.base.files import sync_folder
from core.store import Store
from ocsp.codec import CertIdHash
from ocsp.response_codec import Envelopes


class ExportSummary(msgspec.Struct, frozen=True, kw_only=True):
    written: int
    # Files of certificates past their notAfter (or no longer in the store), removed:
    # a server must not staple for an expired certificate, and a CA-wide export folder
    # would otherwise keep a file for every certificate ever issued.
    removed: int = 0
    # Serials (hex) of live certificates with no current response to write: not signed
    # yet, past its nextUpdate (the refresher is behind or the signer down), or stored
    # without its envelope. Their files, if any, were left as they were: a server
    # stapling from them is stapling something stale, which an operator must hear of.
    stale: list[str]


# Files written before each sync-and-rename round: one sync per round, not per file.
SYNC_EVERY = 4096


def export_responses(store: Store, out: Path, *, hash_alg: CertIdHash, now: int) -> ExportSummary:
    """Write `<serial hex>.der` for every unexpired certificate with a current response,
    and remove the files of certificates that expired. Each file is written aside, made
    durable, then renamed over the old one, so a server reading it never sees half of
    one, even after a crash (a rename that reaches the disk before the data it names
    leaves an empty file). Files other than `<serial of a stored response>.der` are
    never touched."""
    out.mkdir(parents=True, exist_ok=True)
    written = removed = 0
    stale: list[str] = []
    ready: list[tuple[Path, Path]] = []
    with store.read() as txn:
        envelopes = Envelopes(txn.get_ocsp_envelope)
        for serial, rec in txn.iter_ocsp():
            name = serial.hex()
            cert = txn.get_cert_status(serial)
            if cert is None or cert.not_after < now:
                try:
                    (out / f"{name}.der").unlink()
                except FileNotFoundError:
                    pass
                else:
                    removed += 1
                continue
            signed = rec.signed.get(int(hash_alg))
            der = envelopes.response(signed) if signed is not None else None
            if der is None or rec.next_update <= now:
                stale.append(name)
                continue
            tmp = out / f".{name}.der.tmp"
            tmp.write_bytes(der)
            ready.append((tmp, out / f"{name}.der"))
            if len(ready) >= SYNC_EVERY:
                written += _publish(out, ready)
    written += _publish(out, ready)
    if removed:
        sync_folder(out)
    return ExportSummary(written=written, stale=stale, removed=removed)


def _publish(out: Path, ready: list[tuple[Path, Path]]) -> int:
    """Sync the written files, rename each over its target, sync the folder."""
    if not ready:
        return 0
    os.sync()  # one call for thousands of files; fsync on each would cost a disk flush each
    for tmp, target in ready:
        os.replace(tmp, target)
    sync_folder(out)
    n = len(ready)
    ready.clear()
    return n
