"""The public event types and which timeline entries become which (one mapping, ready for more).

Consumers see `lead.created` … ; the timeline keeps its own finer types. A timeline type missing here is
simply not published. Several timeline types may map to one public type (a PATCH writes `owner_changed`,
the owners helper writes `owner_assigned`: both are `lead.assigned`).
"""

from __future__ import annotations

from enum import StrEnum

from shared.enums import EventType

PAYLOAD_VERSION = 1

LEAD_CREATED = "lead.created"
LEAD_UPDATED = "lead.updated"
LEAD_STATUS_CHANGED = "lead.status_changed"
LEAD_ASSIGNED = "lead.assigned"
LEAD_MERGED = "lead.merged"
TOUR_BOOKED = "tour.booked"
MESSAGE_SENT = "message.sent"
REVIEW_ITEM_CREATED = "review_item.created"
ENDPOINT_DISABLED = "webhook_endpoint.disabled"

PUBLIC_EVENT_TYPES: tuple[str, ...] = (
    LEAD_CREATED,
    LEAD_UPDATED,
    LEAD_STATUS_CHANGED,
    LEAD_ASSIGNED,
    LEAD_MERGED,
    TOUR_BOOKED,
    MESSAGE_SENT,
    REVIEW_ITEM_CREATED,
    ENDPOINT_DISABLED,
)

PublicEventType = StrEnum(  # type: ignore[misc]
    "PublicEventType", {name.replace(".", "_"): name for name in PUBLIC_EVENT_TYPES}
)

# timeline event type → public event type
FROM_TIMELINE: dict[str, str] = {
    EventType.created: LEAD_CREATED,
    EventType.fields_updated: LEAD_UPDATED,
    EventType.property_changed: LEAD_UPDATED,
    EventType.temperature_changed: LEAD_UPDATED,
    EventType.status_changed: LEAD_STATUS_CHANGED,
    EventType.owner_changed: LEAD_ASSIGNED,
    EventType.owner_assigned: LEAD_ASSIGNED,
    EventType.lead_claimed: LEAD_ASSIGNED,  # a pool claim assigns the lead too
    EventType.merged: LEAD_MERGED,
    EventType.tour_scheduled: TOUR_BOOKED,  # the booking as the tours endpoints write it today
    EventType.tour_booked: TOUR_BOOKED,  # the acting half's name for it
    EventType.message_sent: MESSAGE_SENT,
}
