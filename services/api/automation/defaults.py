"""The rules that ship with the product (docs/automation.md says them in plain words).

Organizations and properties override a rule by saving one with the same id (or disable it with
`"enabled": false`); what they do not mention keeps working as shipped.
"""

from __future__ import annotations

from typing import Any

from services.api.automation.schemas import RuleSetDocument

DEFAULTS_VERSION = 1
DEFAULT_SCOPE = "default"

DAY = 24 * 60
_EARLY = ["new", "contacted", "qualified", "nurture"]  # a generic "reply" must not undo a later stage


def _next(action: str, minutes: int = 0, relative_to: str = "now") -> dict[str, Any]:
    return {"type": "set_next_action", "action": action, "due_in_minutes": minutes, "due_relative_to": relative_to}


def _send(template: str, *, kind: str = "reply", channel: str = "best", first: bool = False) -> dict[str, Any]:
    return {"type": "send_template", "template": template, "kind": kind, "channel": channel, "first_reply": first}


def _follow_up() -> dict[str, Any]:
    return {"type": "start_sequence", "sequence": "inquiry_follow_up"}


def _event(event: str) -> dict[str, Any]:
    return {"type": "event", "event": event}


def _status(status: str) -> dict[str, Any]:
    return {"type": "status", "status": status}


_RULES: list[dict[str, Any]] = [
    # missed call → instant text-back and a call task
    {
        "id": "missed_call",
        "name": "Missed call: call back",
        "trigger": _event("missed_call"),
        "actions": [
            {"type": "create_task", "task_type": "call", "title": "Call back: missed call", "due_in_minutes": 0},
            _next("call", 5),
        ],
    },
    {
        "id": "missed_call_text_back",
        "name": "Missed call: instant text-back",
        "trigger": _event("missed_call"),
        "conditions": {"consent": "can_text"},
        "actions": [_send("missed_call_text_back", channel="sms", first=True)],
    },
    # web form → acknowledgement plus the most valuable qualifying question not yet answered
    {
        "id": "web_form",
        "name": "Website form: acknowledge and ask the next qualifying question",
        "trigger": _event("inquiry"),
        "conditions": {"channel": ["web"], "status": _EARLY},
        "actions": [_send("web_form_ack", first=True), _next("reply", 15), _follow_up()],
    },
    # ILS inquiry → source recorded, the lead in the property's pipeline (intake does both), a reply
    {
        "id": "ils_inquiry",
        "name": "ILS inquiry: reply",
        "trigger": _event("inquiry"),
        "conditions": {"channel": ["ils", "email"], "status": _EARLY},
        "actions": [_send("ils_reply", first=True), _next("reply", 5), _follow_up()],
    },
    {
        "id": "inquiry_other",
        "name": "Other inquiry: reply",
        "trigger": _event("inquiry"),
        "conditions": {"channel": ["phone", "sms", "walk_in", "other"], "status": _EARLY},
        "actions": [_next("reply", 5)],
    },
    {
        "id": "inquiry_text_ack",
        "name": "Inquiry by text or another channel: acknowledge",
        "trigger": _event("inquiry"),
        "conditions": {"channel": ["sms", "other"], "status": _EARLY},
        "actions": [_send("inquiry_ack", first=True), _follow_up()],
    },
    {
        "id": "question",
        "name": "Question: acknowledge, a person answers",
        "trigger": _event("question"),
        "conditions": {"status": _EARLY},
        "actions": [_send("question_ack", first=True), _next("reply", 5)],
    },
    {
        "id": "sms_in",
        "name": "Text from the renter: reply",
        "trigger": _event("sms_in"),
        "conditions": {"status": _EARLY},
        "actions": [_next("reply", 5)],
    },
    {
        "id": "email_in",
        "name": "Email from the renter: reply",
        "trigger": _event("email_in"),
        "conditions": {"status": _EARLY},
        "actions": [_next("reply", 15)],
    },
    {
        "id": "call_answered",
        "name": "Answered call: schedule a tour",
        "trigger": _event("call"),
        "conditions": {"status": _EARLY},
        "actions": [_next("schedule_tour", 4 * 60)],
    },
    # tour request → confirm an available slot, or a scheduling task
    {
        "id": "tour_request_time",
        "name": "Tour request with a time: confirm it",
        "trigger": _event("tour_request"),
        "conditions": {"known_fields": ["tour_time"]},
        "actions": [
            _send("tour_request_confirm", first=True),
            {"type": "create_task", "task_type": "tour", "title": "Confirm the requested tour time"},
            _next("confirm_tour", 15),
        ],
    },
    {
        "id": "tour_request_no_time",
        "name": "Tour request without a time: schedule it",
        "trigger": _event("tour_request"),
        "conditions": {"missing_fields": ["tour_time"]},
        "actions": [
            _send("tour_request_pick_time", first=True),
            {"type": "create_task", "task_type": "tour", "title": "Schedule the requested tour", "due_in_minutes": 15},
            _next("schedule_tour", 15),
        ],
    },
    # tour booked → the tour is the next step; reminders 24 h and 2 h before (directions, parking, ID)
    {
        "id": "tour_booked",
        "name": "Tour booked: host it",
        "trigger": _event("tour_booked"),
        "actions": [
            {"type": "cancel_tasks", "reason": "tour_booked", "rules": ["tour_request_time", "tour_request_no_time"]},
            _next("tour", 0, "tour_start"),
        ],
    },
    {
        "id": "tour_reminder_24h",
        "name": "Tour reminder, 24 hours before",
        "trigger": {"type": "time", "since": "tour_start", "after_minutes": -DAY, "grace_minutes": 12 * 60},
        "actions": [_send("tour_reminder_24h", kind="proactive")],
    },
    {
        "id": "tour_reminder_2h",
        "name": "Tour reminder, 2 hours before",
        "trigger": {"type": "time", "since": "tour_start", "after_minutes": -120, "grace_minutes": 90},
        "actions": [_send("tour_reminder_2h", kind="proactive")],
    },
    # toured → a follow-up with the application link
    {
        "id": "toured",
        "name": "Toured: follow up with the application link",
        "trigger": _status("toured"),
        "actions": [_send("tour_follow_up_apply", kind="proactive"), _next("follow_up", DAY)],
    },
    # no-show → an offer to reschedule
    {
        "id": "no_show",
        "name": "No-show: offer to reschedule",
        "trigger": _event("tour_no_show"),
        "actions": [_send("tour_reschedule_offer", kind="proactive"), _next("reschedule_tour", 60)],
    },
    {
        "id": "tour_canceled",
        "name": "Tour canceled: reschedule",
        "trigger": _event("tour_canceled"),
        "actions": [_next("reschedule_tour", 60)],
    },
    # stale lead (no touch for N days) → a short reactivation sequence (day 1, 3, 7)
    {
        "id": "stale_lead",
        "name": "Stale lead: reactivation sequence",
        "trigger": {"type": "time", "since": "last_touch", "after_minutes": 7 * DAY, "grace_minutes": DAY},
        "conditions": {"status": ["new", "contacted", "qualified", "tour_requested", "toured"]},
        "actions": [{"type": "start_sequence", "sequence": "reactivation"}, _next("reactivation", 0)],
    },
    # application started → reminders of the missing steps
    {
        "id": "application_started",
        "name": "Application started: remind of the missing steps",
        "trigger": _status("application_started"),
        "actions": [_next("application_reminder", DAY)],
    },
    {
        "id": "application_reminder_1d",
        "name": "Application reminder, day 1",
        "trigger": {"type": "time", "since": "application_started", "after_minutes": DAY},
        "conditions": {"status": ["application_started"]},
        "actions": [_send("application_missing_steps", kind="proactive"), _next("application_reminder", 2 * DAY)],
    },
    {
        "id": "application_reminder_3d",
        "name": "Application reminder, day 3",
        "trigger": {"type": "time", "since": "application_started", "after_minutes": 3 * DAY},
        "conditions": {"status": ["application_started"]},
        "actions": [
            _send("application_missing_steps", kind="proactive"),
            {"type": "create_task", "task_type": "call", "title": "Help finish the application"},
            _next("call", 0),
        ],
    },
    {
        "id": "application_submitted",
        "name": "Application submitted: review it",
        "trigger": _status("application_submitted"),
        "actions": [_next("review_application", DAY)],
    },
    # unqualified → sales follow-up stops, the lead goes to nurture or lost
    {
        "id": "unqualified",
        "name": "Unqualified: stop sales follow-up",
        "trigger": _event("unqualified"),
        "actions": [
            {"type": "stop_sequences", "reason": "unqualified"},
            {"type": "cancel_tasks", "reason": "unqualified"},
            _next("nurture", 30 * DAY),
        ],
    },
    # the statuses people move leads to, and the staff's own responses
    {"id": "qualified", "name": "Qualified", "trigger": _status("qualified"), "actions": [_next("schedule_tour", DAY)]},
    {
        "id": "tour_requested",
        "name": "Tour requested",
        "trigger": _status("tour_requested"),
        "actions": [_next("confirm_tour", 15)],
    },
    {
        "id": "nurture",
        "name": "Nurture: slow cadence",
        "trigger": _status("nurture"),
        "actions": [_next("nurture", 14 * DAY)],
    },
    *[
        {
            "id": f"staff_{event}",
            "name": "Staff response: move to a tour",
            "trigger": _event(event),
            "conditions": {"status": ["new", "contacted"]},
            "actions": [_next("schedule_tour", 2 * DAY)],
        }
        for event in ("email_out", "sms_out", "call_logged", "meeting_logged")
    ],
    {
        "id": "created",
        "name": "Added by a person: first contact",
        "trigger": _event("created"),
        "conditions": {"status": ["new"]},
        "actions": [_next("call", 60)],
    },
]

_SEQUENCES: dict[str, Any] = {
    "inquiry_follow_up": {
        "name": "Inquiry follow-up: a day later, unless the renter answered",
        "steps": [{"after_minutes": DAY, "grace_minutes": DAY, "actions": [_send("follow_up", kind="proactive")]}],
    },
    "reactivation": {
        "name": "Reactivation: day 1, 3, 7",
        "steps": [
            {"after_minutes": 0, "grace_minutes": DAY, "actions": [_send("reactivation_1", kind="proactive")]},
            {"after_minutes": 2 * DAY, "grace_minutes": DAY, "actions": [_send("reactivation_2", kind="proactive")]},
            {
                "after_minutes": 6 * DAY,
                "grace_minutes": DAY,
                "actions": [_send("reactivation_3", kind="proactive"), _next("call", 0)],
            },
        ],
    },
}

DEFAULTS = RuleSetDocument.model_validate(
    {"rules": _RULES, "sequences": _SEQUENCES, "settings": {"duplicate_window_minutes": 30}}
)
