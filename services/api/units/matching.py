"""Scoring a unit against a lead's saved criteria (bedrooms, budget, move-in, pets), with reasons in words.

One pure function, shared by the matching endpoint and reactivation, so "matched" means the same in both.
Score = 100 minus penalties (hand-computable, docs/tours.md):
- bedrooms: 30 per bedroom of difference;
- budget: 1 per $10 over budget_max (a $150 overage costs 15);
- move-in: 1 per day the unit becomes available after the move-in date (a move-in date already past reads as
  "as soon as possible", i.e. today);
- pets: 40 when the lead has pets and the plan allows none; 10 when only cats or only dogs are allowed.
A criterion the lead left empty matches anything. `matched` = nothing fell short (a cats-only or dogs-only
plan is a caution, not a shortfall).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from shared.enums import PetPolicy


@dataclass(frozen=True, slots=True)
class LeadCriteria:
    bedrooms: int | None
    budget_max: int | None
    move_in_date: date | None
    pets: bool | None


@dataclass(frozen=True, slots=True)
class UnitFacts:
    bedrooms: int
    rent: int | None
    available_on: date | None
    pet_policy: str


@dataclass(slots=True)
class Reason:
    criterion: str
    ok: bool
    text: str


@dataclass(slots=True)
class Verdict:
    score: int
    matched: bool
    reasons: list[Reason] = field(default_factory=list)

    @property
    def summary(self) -> str:
        short = [reason.text for reason in self.reasons if not reason.ok]
        return "; ".join(short or [reason.text for reason in self.reasons])


def _days(n: int) -> str:
    return f"{n} day{'s' if n != 1 else ''}"


def _beds(n: int) -> str:
    return "studio" if n == 0 else f"{n} bedroom{'s' if n != 1 else ''}"


def score(criteria: LeadCriteria, unit: UnitFacts, today: date) -> Verdict:
    penalty = 0
    reasons: list[Reason] = []
    if criteria.bedrooms is not None:
        diff = abs(unit.bedrooms - criteria.bedrooms)
        if diff == 0:
            reasons.append(Reason("bedrooms", True, f"{_beds(unit.bedrooms)} as wanted"))
        else:
            penalty += 30 * diff
            reasons.append(Reason("bedrooms", False, f"{_beds(unit.bedrooms)}, wanted {criteria.bedrooms}"))
    if criteria.budget_max is not None and unit.rent is not None:
        over = unit.rent - criteria.budget_max
        if over > 0:
            penalty += over // 10
            reasons.append(Reason("budget", False, f"${over:,} over budget"))
        else:
            reasons.append(Reason("budget", True, "within budget" if over == 0 else f"${-over:,} under budget"))
    if criteria.move_in_date is not None:
        move_in = max(criteria.move_in_date, today)
        ready = max(unit.available_on or today, today)
        late = (ready - move_in).days
        if late > 0:
            penalty += late
            reasons.append(Reason("move_in", False, f"available {_days(late)} after move-in"))
        else:
            reasons.append(Reason("move_in", True, "available by move-in"))
    if criteria.pets:
        policy = PetPolicy(unit.pet_policy)
        if policy == PetPolicy.not_allowed:
            penalty += 40
            reasons.append(Reason("pets", False, "no pets allowed"))
        elif policy in (PetPolicy.cats_only, PetPolicy.dogs_only):
            penalty += 10
            reasons.append(Reason("pets", True, f"pets: {policy.value.replace('_', ' ')}"))
        elif policy == PetPolicy.case_by_case:
            reasons.append(Reason("pets", True, "pets case by case"))
        else:
            reasons.append(Reason("pets", True, "pets allowed"))
    matched = all(reason.ok for reason in reasons)
    return Verdict(score=max(0, 100 - penalty), matched=matched, reasons=reasons)
