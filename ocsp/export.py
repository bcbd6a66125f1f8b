"""`hanko ocsp export`: each live certificate's current response as a file, for web
servers that staple from files (nginx `ssl_stapling_file`, Apache, HAProxy)."""

from __future__ import annotations

import os
from pathlib import Path

from core.store import Store
from ocsp.codec import CertIdHash, Envelopes


def export_responses(store: Store, out: Path, *, hash_alg: CertIdHash, now: int) -> int:
    """Write `<serial hex>.der` for every unexpired certificate with a current response;
    each file is replaced atomically, so a server reading it never sees half of one.
    Returns how many were written."""
    out.mkdir(parents=True, exist_ok=True)
    written = 0
    with store.read() as txn:
        envelopes = Envelopes(txn.get_ocsp_envelope)
        for serial, rec in txn.iter_ocsp():
            signed = rec.signed.get(int(hash_alg))
            if signed is None or rec.next_update <= now:
                continue
            cert = txn.get_cert(serial)
            if cert is None or cert.not_after < now:
                continue
            der = envelopes.response(signed)
            if der is None:
                continue
            target = out / f"{serial.hex()}.der"
            tmp = out / f".{serial.hex()}.der.tmp"
            tmp.write_bytes(der)
            os.replace(tmp, target)
            written += 1
    fd = os.open(out, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return written
