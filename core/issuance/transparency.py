"""The Certificate Transparency step of issuance, between the commit of the
precertificates and the commit of the final certificates: their SCTs from the logs
(all of a batch at once), the final TBS with the SCT list, its lint, one signer call."""

from __future__ import annotations

import msgspec

from core.base.errors import CtUnavailable, HankoError
from core.ct.precert import sct_list, with_extension
from core.ct.submit import Entry, Submitter
from core.issuance.prepare import Preparer
from core.issuance.signing import BatchSigning, Signed


async def complete(
    promised: list[tuple[int, Signed]],
    *,
    submitter: Submitter,
    signing: BatchSigning,
    preparer: Preparer,
) -> list[tuple[int, Signed | HankoError]]:
    """The final certificate of each committed precertificate, or why there is none
    (CtUnavailable: too few SCTs by the deadline; a lint or signer error)."""
    entries = [
        Entry(
            serial=s.prepared.record.serial.hex(),
            precertificate=s.der,
            tbs=s.prepared.log_tbs,
            not_before=s.prepared.record.not_before,
            not_after=s.prepared.record.not_after,
            issuer=s.prepared.record.issuer,
        )
        for _, s in promised
    ]
    answers = await submitter.scts_for(entries)
    out: list[tuple[int, Signed | HankoError]] = []
    finals: list[tuple[int, Signed, bytes]] = []
    for (i, s), answer in zip(promised, answers, strict=True):
        if isinstance(answer, CtUnavailable):
            out.append((i, answer))
            continue
        tbs = with_extension(s.prepared.log_tbs, sct_list(answer))
        try:
            preparer.lint_final(s.prepared, tbs)
        except HankoError as exc:
            out.append((i, exc))
            continue
        finals.append((i, s, tbs))
    if finals:
        signed = await signing.sign_tbs([(s.prepared.record.issuer, tbs) for _, s, tbs in finals])
        for (i, s, _), der in zip(finals, signed, strict=True):
            if isinstance(der, HankoError):
                out.append((i, der))
            else:
                final = msgspec.structs.replace(s, der=der, precertificate=s.der)
                out.append((i, final))
    return out
