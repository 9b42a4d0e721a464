"""Conditions of a rule, checked against the lead, the renter and the event. The first that fails is the
reason the rule was skipped, in words."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from services.api.automation.schemas import Conditions
from shared.enums import ConsentState
from shared.models import Organization, Property
from shared.working_hours import WorkingHours, zone

if TYPE_CHECKING:
    from services.api.automation.evaluate import Ctx

# the order of value: what a leasing agent most needs to know next
QUESTION_ORDER = ("move_in_date", "bedrooms", "budget", "pets", "tour_time")
DEFAULT_OFFICE_HOURS = WorkingHours.model_validate(
    {
        **{day: [{"start": "09:00", "end": "18:00"}] for day in ("mon", "tue", "wed", "thu", "fri")},
        "sat": [{"start": "10:00", "end": "17:00"}],
    }
)


@dataclass(frozen=True, slots=True)
class ContactInfo:
    email: str | None
    phone: str | None
    sms_consent: str
    email_consent: str

    @property
    def can_text(self) -> bool:
        return self.phone is not None and self.sms_consent != ConsentState.opted_out

    @property
    def can_email(self) -> bool:
        return self.email is not None and self.email_consent != ConsentState.opted_out


def missing_fields(lead: Any) -> list[str]:
    missing = []
    if lead.move_in_date is None and not lead.move_in_text:
        missing.append("move_in_date")
    if lead.bedrooms is None:
        missing.append("bedrooms")
    if lead.budget_min is None and lead.budget_max is None:
        missing.append("budget")
    if lead.pets is None and not lead.pets_text:
        missing.append("pets")
    if not lead.preferred_tour_times:
        missing.append("tour_time")
    return missing


def next_question(lead: Any) -> str | None:
    missing = set(missing_fields(lead))
    return next((name for name in QUESTION_ORDER if name in missing), None)


def _listed(values: list[Any] | None, value: Any) -> bool:
    return values is None or str(value) in {str(item) for item in values}


async def _office_open(ctx: Ctx) -> bool:
    hours = ctx.book.settings.office_hours or DEFAULT_OFFICE_HOURS
    tz_name = None
    if ctx.lead.property_id is not None:
        tz_name = await ctx.session.scalar(select(Property.timezone).where(Property.id == ctx.lead.property_id))
    if tz_name is None:
        tz_name = await ctx.session.scalar(select(Organization.timezone).where(Organization.id == ctx.lead.org_id))
    return hours.is_open(ctx.now, zone(tz_name))


async def failed_condition(ctx: Ctx, conditions: Conditions) -> str | None:
    lead, data = ctx.lead, ctx.data
    checks: list[tuple[str, list[Any] | None, Any]] = [
        ("source", conditions.source, data.get("source") or lead.latest_source or lead.source),
        ("property_id", conditions.property_id, lead.property_id),
        ("channel", conditions.channel, data.get("channel")),
        ("lead_kind", conditions.lead_kind, lead.kind),
        ("status", conditions.status, lead.status),
        ("lost_reason", conditions.lost_reason, data.get("lost_reason") or lead.lost_reason),
    ]
    for name, allowed, value in checks:
        if not _listed(allowed, value):
            shown = ", ".join(str(item) for item in allowed or [])
            return f"condition {name}: {value} is not one of [{shown}]"
    if conditions.consent == "can_text" and not ctx.contact.can_text:
        return "condition consent: the renter cannot receive texts (no mobile number or opted out)"
    if conditions.consent == "cannot_text" and ctx.contact.can_text:
        return "condition consent: the renter can receive texts"
    if conditions.consent == "can_email" and not ctx.contact.can_email:
        return "condition consent: the renter cannot receive email"
    if conditions.working_hours is not None:
        is_open = await _office_open(ctx)
        if is_open != (conditions.working_hours == "inside"):
            return f"condition working_hours: the office is {'open' if is_open else 'closed'}"
    missing = set(missing_fields(lead))
    if conditions.missing_fields is not None and not missing & {str(f) for f in conditions.missing_fields}:
        return "condition missing_fields: all of them are known"
    if conditions.known_fields is not None:
        unknown = [str(f) for f in conditions.known_fields if str(f) in missing]
        if unknown:
            return f"condition known_fields: {', '.join(unknown)} not known yet"
    return None
