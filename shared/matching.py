"""The match verdict as a pure decision, shared by the intake worker and the CSV import.

Who owns which key, and the few facts the rules need (a kept-apart pair, the known name), are read by the
caller, one signal at a time (the worker, `services/intake/matching.py`) or a whole chunk at once (the
import); the decision itself is written once, here.
"""

from __future__ import annotations

import uuid

from shared.enums import IdentityKind, MatchVerdict
from shared.identity import IdentityKeys
from shared.repositories.identities import prefer_email_owner
from shared.schemas.signal import MatchCandidate, MatchResult


def kept_apart_pair(by_contact: dict[uuid.UUID, list[str]]) -> tuple[uuid.UUID, uuid.UUID] | None:
    """The pair whose keep-apart decision matters, if any (exactly two owners)."""
    if len(by_contact) != 2:
        return None
    first, second = list(by_contact)
    return first, second


def name_needed_for(by_contact: dict[uuid.UUID, list[str]], first_name: str | None) -> uuid.UUID | None:
    """The contact whose name decides the verdict: a single owner matched on phone alone."""
    if len(by_contact) != 1 or not first_name:
        return None
    ((contact_id, kinds),) = by_contact.items()
    return contact_id if sorted(kinds) == [IdentityKind.phone] else None


def decide(
    keys: IdentityKeys,
    by_contact: dict[uuid.UUID, list[str]],
    *,
    kept_apart: bool = False,
    known_name: tuple[str | None, str | None] | None = None,
    first_name: str | None = None,
    last_name: str | None = None,
) -> MatchResult:
    reasons = list(keys.notes)
    if not by_contact:
        return MatchResult(verdict=MatchVerdict.new, reasons=[*reasons, "no contact has this email or phone"])
    candidates = [MatchCandidate(contact_id=cid, matched_on=sorted(kinds)) for cid, kinds in by_contact.items()]
    if len(candidates) > 1:
        if len(candidates) == 2 and kept_apart:
            best_id = prefer_email_owner(by_contact)
            reasons.append("email and phone belong to contacts a person chose to keep apart; using the email match")
            return MatchResult(
                verdict=MatchVerdict.existing, contact_id=best_id, candidates=candidates, reasons=reasons
            )
        described = "; ".join(f"{'+'.join(c.matched_on)} matches contact {c.contact_id}" for c in candidates)
        return MatchResult(
            verdict=MatchVerdict.review, candidates=candidates, reasons=[*reasons, f"conflict: {described}"]
        )
    only = candidates[0]
    reasons.append(f"{' and '.join(only.matched_on)} matched an existing contact")
    conflict = name_conflict(only.matched_on, known_name, first_name, last_name)
    if conflict:
        return MatchResult(
            verdict=MatchVerdict.review, contact_id=only.contact_id, candidates=candidates, reasons=[*reasons, conflict]
        )
    return MatchResult(
        verdict=MatchVerdict.existing, contact_id=only.contact_id, candidates=candidates, reasons=reasons
    )


def _fold(value: str | None) -> str:
    return (value or "").strip().casefold()


def name_conflict(
    matched_on: list[str],
    known_name: tuple[str | None, str | None] | None,
    first_name: str | None,
    last_name: str | None,
) -> str | None:
    """Same phone, clearly different person: a shared family or office line must not merge two renters."""
    if matched_on != [IdentityKind.phone] or not first_name or known_name is None:
        return None
    known_first, known_last = known_name
    if not known_first:
        return None
    same_first = _fold(known_first) == _fold(first_name) or (
        _fold(known_first)[:1] == _fold(first_name)[:1]
        and (len(_fold(known_first)) == 1 or len(_fold(first_name)) == 1)
    )
    same_last = not last_name or not known_last or _fold(known_last) == _fold(last_name)
    if same_first and same_last:
        return None
    return "phone matched but the name differs: possibly a different person on a shared phone"
