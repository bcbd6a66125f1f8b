"""`hanko ocsp export` against a real store and signer: current responses are written,
live certificates without one are named, and the CLI exits 1 for them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography.x509 import ocsp

from core.base.clock import FixedClock, to_epoch
from core.issuance.engine import IssuanceEngine
from core.issuance.messages import IssueRequest
from core.store import serial_bytes
from ocsp import export
from ocsp.codec import CertIdHash
from ocsp.export import export_responses
from tests.conftest import DevCA, hanko
from tests.core.issuance.test_engine import csr_pem, run, setup

UTC = dt.UTC
DAY = dt.timedelta(days=1)


def test_current_responses_are_written_and_stale_ones_named(
    ca: DevCA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(export, "SYNC_EVERY", 1)  # a sync-and-rename round per file
    start = dt.datetime.now(UTC).replace(microsecond=0)
    clock = FixedClock(start)
    out = tmp_path / "staples"

    async def job(engine: IssuanceEngine) -> None:
        issued = await engine.issue_many(
            [
                IssueRequest(csr=csr_pem([f"x{i}.example.co.jp"]), profile="ov", organization="o")
                for i in range(2)
            ],
            actor="t",
        )
        serials = [serial_bytes(int(r.serial, 16)).hex() for r in issued]  # type: ignore[union-attr]
        now = to_epoch(start)
        summary = export_responses(engine.store, out, hash_alg=CertIdHash.SHA1, now=now)
        assert (summary.written, summary.stale) == (2, [])
        assert sorted(p.name for p in out.iterdir()) == sorted(f"{s}.der" for s in serials)
        for s in serials:
            resp = ocsp.load_der_ocsp_response((out / f"{s}.der").read_bytes())
            assert resp.certificate_status is ocsp.OCSPCertStatus.GOOD
        first = (out / f"{serials[0]}.der").read_bytes()

        # Past nextUpdate (4 days by default) with no refresh: nothing current to write.
        # The old files stay, and both certificates are named.
        later = to_epoch(start + 5 * DAY)
        summary = export_responses(engine.store, out, hash_alg=CertIdHash.SHA1, now=later)
        assert summary.written == 0
        assert sorted(summary.stale) == sorted(serials)
        assert (out / f"{serials[0]}.der").read_bytes() == first

        # Past the certificates' notAfter they are not live: neither written nor named,
        # and their files go. A file that is not a stored serial's is left alone.
        (out / "operator-notes.txt").write_text("mine")
        (out / "00ff.der").write_bytes(b"not a serial of this CA")
        end = to_epoch(issued[0].not_after) + 1  # type: ignore[union-attr]
        summary = export_responses(engine.store, out, hash_alg=CertIdHash.SHA1, now=end)
        assert (summary.written, summary.stale, summary.removed) == (0, [], 2)
        assert sorted(p.name for p in out.iterdir()) == ["00ff.der", "operator-notes.txt"]
        summary = export_responses(engine.store, out, hash_alg=CertIdHash.SHA1, now=end)
        assert summary.removed == 0  # nothing left to remove

        # Asking for a re-signing (as a revocation whose signing failed does) keeps the
        # last response: still current, still written.
        engine.store.write(lambda t: t.schedule_ocsp(bytes.fromhex(serials[1]), now))
        summary = export_responses(engine.store, out, hash_alg=CertIdHash.SHA1, now=now)
        assert (summary.written, summary.stale) == (2, [])  # the last response still stands

    run(ca, clock, job, **setup("o", start, level="ov"))


def test_cli_exits_1_naming_a_live_certificate_without_a_response(
    ca: DevCA, tmp_path: Path
) -> None:
    start = dt.datetime.now(UTC).replace(microsecond=0)
    clock = FixedClock(start - 5 * DAY)  # its responses expired a day ago

    async def job(engine: IssuanceEngine) -> str:
        [issued] = await engine.issue_many(
            [IssueRequest(csr=csr_pem(["old.example.co.jp"]), profile="ov", organization="o")],
            actor="t",
        )
        return serial_bytes(int(issued.serial, 16)).hex()  # type: ignore[union-attr]

    serial = run(ca, clock, job, **setup("o2", start - 5 * DAY, level="ov"))
    result = hanko("ocsp", "export", "-c", str(ca.config_path), "--out", str(tmp_path / "s"))
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("hanko: error: ")
    assert serial in line
    assert "no current response" in line
