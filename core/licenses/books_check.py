"""`hanko licenses check`: the books balance. Every licence's cached balances are
recomputed from its ledger alone; every consumed unit has its certificate and every
paid certificate its consumption; every scheduled renewal holds what the ledger says it
reserved."""

from __future__ import annotations

from core.licenses import balances
from core.licenses.policy import CHARGING_KINDS
from core.store import CertRecord, ReadTxn


def check(read: ReadTxn) -> list[str]:
    """Recompute every license from its ledger and compare with the cached record; and
    prove that every consumed unit has its certificate and every paid certificate its
    consumption. Returns the problems found (none: the books balance)."""
    problems: list[str] = []
    kinds: dict[str, str] = {}
    for lic in read.iter_licenses():
        kinds[lic.id] = lic.kind
        derived = balances.derive(lic, read.iter_ledger(license=lic.id))
        problems += [f"license {lic.id}: {d}" for d in balances.differences(lic, derived)]
    paid: dict[str, str] = {}  # serial hex -> license, from consume/transfer entries
    held: dict[str, int] = {}  # scheduled renewal id -> what its reserve entries hold
    for e in read.iter_ledger():
        if e.movement in ("reserve", "unreserve"):
            held[e.note] = held.get(e.note, 0) - e.amount
            continue
        if e.movement in ("consume", "transfer") and e.item in ("certificate", ""):
            if not e.serial:
                continue
            # One licence pays a certificate, maybe in several entries (a unit per name,
            # a reissue's transfer and the names it added).
            if paid.get(e.serial, e.license) != e.license:
                problems.append(f"certificate {e.serial} was paid twice (ledger {e.seq})")
            paid[e.serial] = e.license
            cert = read.get_cert(bytes.fromhex(e.serial))
            if cert is None:
                problems.append(
                    f"ledger {e.seq}: {e.movement} for certificate {e.serial}, which does not exist"
                )
            elif cert.license != e.license:
                problems.append(
                    f"ledger {e.seq}: certificate {e.serial} is on license"
                    f" {cert.license!r}, not {e.license}"
                )
    problems += _holds(read, held)
    for cert in _certs(read):
        charging = kinds.get(cert.license) in CHARGING_KINDS
        if cert.license and charging and cert.serial.hex() not in paid:
            problems.append(
                f"certificate {cert.serial.hex()} on license {cert.license}"
                " has no consumption in the ledger"
            )
    return problems


def _holds(read: ReadTxn, held: dict[str, int]) -> list[str]:
    """Every scheduled renewal holds what the ledger says it reserved; a settled one
    holds nothing any more."""
    problems = []
    for rec in read.iter_renewals():
        want = rec.reserved if rec.status == "scheduled" else 0
        if held.pop(rec.id, 0) != want:
            problems.append(f"renewal {rec.id} ({rec.status}) holds what the ledger does not say")
    problems += [f"ledger holds for unknown renewal {rid}" for rid, n in held.items() if n]
    return problems


def _certs(read: ReadTxn) -> list[CertRecord]:
    out = []
    for acct in read.iter_accounts():
        for serial in read.iter_account_certs(acct.id):
            cert = read.get_cert(serial)
            if cert is not None:
                out.append(cert)
    return out
