"""Whether the remote perspectives corroborate the primary (BR 3.2.2.9), pure: each
perspective's answer for one check, the quorum the BR table allows for the number of
perspectives asked, and the Regional Internet Registries the corroborating ones span.

- Asked 1: none may disagree; 2 to 5: at most 1; 6 or more: at most 2 (a perspective
  that did not answer, or answered too late, disagrees).
- The corroborating perspectives span at least 2 RIRs.
- The summary is the BR 5.4.1 quorum result ("4/5": four of five perspectives asked
  corroborated), with the perspectives that did and did not, and why not."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from core.config.mpic import REQUIRED_RIRS, RIRS

__all__ = ["REQUIRED_RIRS", "RIRS", "Answer", "Verdict", "allowed_failures", "judge"]


class Answer(msgspec.Struct, frozen=True, kw_only=True):
    code: str  # the perspective's code, e.g. "ap-tokyo"
    rir: str
    corroborates: bool
    detail: str = ""  # why not, in the perspective's words (or: unreachable, too late)
    reachable: bool = True  # False: no answer (down, refused, too late): not a view of DNS


class Verdict(msgspec.Struct, frozen=True, kw_only=True):
    corroborated: bool
    quorum: str  # "4/5"
    passed: tuple[str, ...]
    failed: tuple[str, ...]
    rirs: tuple[str, ...]  # of the perspectives that corroborated
    reason: str  # a sentence: what the summary says, and why a refusal
    why: dict[str, str] = {}  # each perspective that did not corroborate: what it said
    # Refused only because perspectives did not answer (none that answered disagreed):
    # worth trying again later, as a new attempt.
    unanswered: bool = False

    def summary(self) -> str:
        return f"{self.quorum}, RIRs {', '.join(self.rirs) or 'none'}"


def allowed_failures(asked: int) -> int:
    """BR 3.2.2.9's table: how many of `asked` remote perspectives may not corroborate."""
    if asked <= 1:
        return 0
    return 1 if asked <= 5 else 2


def judge(answers: Sequence[Answer], *, required: int) -> Verdict:
    """The quorum over every perspective asked (`answers`: one each, failures included);
    `required`: the perspectives that must have been asked."""
    asked = len(answers)
    passed = tuple(sorted(a.code for a in answers if a.corroborates))
    failed_answers = sorted((a for a in answers if not a.corroborates), key=lambda a: a.code)
    failed = tuple(a.code for a in failed_answers)
    rirs = tuple(sorted({a.rir for a in answers if a.corroborates}))
    quorum = f"{len(passed)}/{asked}"

    why = {a.code: a.detail or "did not corroborate" for a in failed_answers}
    unanswered = bool(failed_answers) and all(not a.reachable for a in failed_answers)

    def verdict(ok: bool, reason: str) -> Verdict:
        return Verdict(
            corroborated=ok,
            quorum=quorum,
            passed=passed,
            failed=failed,
            rirs=rirs,
            reason=reason,
            why=why,
            unanswered=unanswered and not ok,
        )

    if asked < required:
        return verdict(False, f"{asked} remote perspectives asked, the BR require {required}")
    if len(failed) > allowed_failures(asked):
        said = "; ".join(f"{code}: {text}" for code, text in why.items())
        return verdict(
            False,
            f"{quorum} remote perspectives corroborated, at most {allowed_failures(asked)} may"
            f" not: {said}",
        )
    if len(rirs) < REQUIRED_RIRS:
        return verdict(
            False,
            f"the {len(passed)} corroborating perspectives span {len(rirs)} RIR"
            f" ({', '.join(rirs) or 'none'}); the BR require {REQUIRED_RIRS}",
        )
    return verdict(True, f"corroborated {quorum}, RIRs {', '.join(rirs)}")
