"""Who is this renter? Exact match on canonical email and E.164 phone within the organization.

A verdict always carries reasons a person can read. Conflicts (email → A, phone → B) go to review rather
than to a guess. Placeholders, relays and the organization's own numbers never count as identity.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.enums import IdentityKind, MatchVerdict
from shared.identity import IdentityKeys, identity_keys
from shared.models import Contact
from shared.repositories.identities import find_contact_ids, kept_apart, prefer_email_owner
from shared.schemas.signal import LeadSignal, MatchCandidate, MatchResult


async def match_signal(
    session: AsyncSession,
    org_id: uuid.UUID,
    signal: LeadSignal,
    blocked: frozenset[tuple[str, str]] = frozenset(),
) -> MatchResult:
    keys = identity_keys(signal.contact, blocked)
    if not keys.usable:
        return MatchResult(verdict=MatchVerdict.new, reasons=[*keys.notes, "no usable email or phone to match on"])
    return await match_keys(session, org_id, keys, signal.contact.first_name, signal.contact.last_name)


async def match_keys(
    session: AsyncSession,
    org_id: uuid.UUID,
    keys: IdentityKeys,
    first_name: str | None = None,
    last_name: str | None = None,
) -> MatchResult:
    by_contact = await find_contact_ids(session, org_id, keys)
    reasons = list(keys.notes)
    if not by_contact:
        return MatchResult(verdict=MatchVerdict.new, reasons=[*reasons, "no contact has this email or phone"])
    candidates = [MatchCandidate(contact_id=cid, matched_on=sorted(kinds)) for cid, kinds in by_contact.items()]
    if len(candidates) > 1:
        pair = list(by_contact)
        if len(pair) == 2 and await kept_apart(session, org_id, *pair):
            best_id = prefer_email_owner(by_contact)
            reasons.append("email and phone belong to contacts a person chose to keep apart; using the email match")
            return MatchResult(
                verdict=MatchVerdict.existing, contact_id=best_id, candidates=candidates, reasons=reasons
            )
        described = "; ".join(f"{'+'.join(c.matched_on)} matches contact {c.contact_id}" for c in candidates)
        return MatchResult(
            verdict=MatchVerdict.review,
            candidates=candidates,
            reasons=[*reasons, f"conflict: {described}"],
        )
    only = candidates[0]
    reasons.append(f"{' and '.join(only.matched_on)} matched an existing contact")
    name_conflict = await _name_conflict(session, only.contact_id, only.matched_on, first_name, last_name)
    if name_conflict:
        return MatchResult(
            verdict=MatchVerdict.review,
            contact_id=only.contact_id,
            candidates=candidates,
            reasons=[*reasons, name_conflict],
        )
    return MatchResult(
        verdict=MatchVerdict.existing, contact_id=only.contact_id, candidates=candidates, reasons=reasons
    )


def _first(value: str | None) -> str:
    return (value or "").strip().casefold()


async def _name_conflict(
    session: AsyncSession, contact_id: uuid.UUID, matched_on: list[str], first_name: str | None, last_name: str | None
) -> str | None:
    """Same phone, clearly different person: a shared family or office line must not merge two renters."""
    if matched_on != [IdentityKind.phone] or not first_name:
        return None
    row = (await session.execute(select(Contact.first_name, Contact.last_name).where(Contact.id == contact_id))).first()
    if row is None or not row.first_name:
        return None
    same_first = _first(row.first_name) == _first(first_name) or (
        _first(row.first_name)[:1] == _first(first_name)[:1]
        and (len(_first(row.first_name)) == 1 or len(_first(first_name)) == 1)
    )
    same_last = not last_name or not row.last_name or _first(row.last_name) == _first(last_name)
    if same_first and same_last:
        return None
    return "phone matched but the name differs: possibly a different person on a shared phone"
