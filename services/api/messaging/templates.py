"""Message templates: `{{ variable }}` placeholders, built-in defaults, and SMS segment counting.

Templates are plain text with a closed set of variables, so a typo is a 422 naming the variable at save
time instead of a renter reading "Hi {{frist_name}}". SMS length follows GSM 03.38: a body written only in
the GSM-7 alphabet takes 160 septets in one segment (153 per segment when split, extension characters count
twice); anything else is UCS-2 with 70 UTF-16 units (67 when split).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from shared.errors import ValidationFailed

VARIABLES = (
    "first_name",
    "last_name",
    "property_name",
    "unit",
    "tour_time",
    "application_link",
    "agent_name",
    "organization_name",
    "help_text",
    "unsubscribe_link",
    "question",
    # the unit digest (services/api/units/digest_job.py): its newly available matching units, and a signed link
    # that stops only the digest
    "unit_list",
    "digest_stop_link",
)
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
MAX_SMS_SEGMENTS = 10

# Built-in texts used when the organization has no template of that key (per property, then org-wide).
DEFAULTS: dict[tuple[str, str], tuple[str | None, str]] = {
    ("text_back", "sms"): (
        None,
        "Hi {{first_name}}, sorry we missed your call about {{property_name}}! When would you like to tour?",
    ),
    ("acknowledgement", "sms"): (
        None,
        "Hi {{first_name}}, thanks for your interest in {{property_name}}. When are you hoping to move in?",
    ),
    ("acknowledgement", "email"): (
        "Your inquiry about {{property_name}}",
        "Hi {{first_name}},\n\nThanks for reaching out about {{property_name}}. When are you hoping to move in, "
        "and when would you like to tour?\n\n{{agent_name}}",
    ),
    ("follow_up", "sms"): (
        None,
        "Hi {{first_name}}, still looking for a home? We'd love to show you {{property_name}}. Reply with a time.",
    ),
    ("follow_up", "email"): (
        "Still looking? {{property_name}}",
        "Hi {{first_name}},\n\nJust following up on {{property_name}}. Would you like to schedule a tour?\n\n"
        "{{agent_name}}",
    ),
    ("sensitive_ack", "sms"): (None, "Thanks for your message. A member of our team will follow up with you shortly."),
    ("sensitive_ack", "email"): (
        "We received your message",
        "Thanks for your message. A member of our team will follow up with you shortly.",
    ),
    ("help", "sms"): (None, "{{help_text}}"),
    # the automation engine's first replies (services/api/automation/defaults.py)
    ("missed_call_text_back", "sms"): (
        None,
        "Hi {{first_name}}, sorry we missed your call about {{property_name}}! When would you like to tour?",
    ),
    ("web_form_ack", "sms"): (None, "Hi {{first_name}}, thanks for your interest in {{property_name}}. {{question}}"),
    ("web_form_ack", "email"): (
        "Your inquiry about {{property_name}}",
        "Hi {{first_name}},\n\nThanks for reaching out about {{property_name}}. {{question}}\n\n{{agent_name}}",
    ),
    ("ils_reply", "sms"): (None, "Hi {{first_name}}, thanks for your interest in {{property_name}}. {{question}}"),
    ("ils_reply", "email"): (
        "Your inquiry about {{property_name}}",
        "Hi {{first_name}},\n\nThanks for reaching out about {{property_name}}. {{question}}\n\n{{agent_name}}",
    ),
    ("inquiry_ack", "sms"): (None, "Hi {{first_name}}, thanks for your interest in {{property_name}}. {{question}}"),
    ("inquiry_ack", "email"): (
        "Your inquiry about {{property_name}}",
        "Hi {{first_name}},\n\nThanks for reaching out about {{property_name}}. {{question}}\n\n{{agent_name}}",
    ),
    ("question_ack", "sms"): (
        None,
        "Hi {{first_name}}, thanks for your question about {{property_name}}. {{agent_name}} will answer shortly.",
    ),
    ("question_ack", "email"): (
        "Your question about {{property_name}}",
        "Hi {{first_name}},\n\nThanks for your question about {{property_name}}. We will answer shortly.\n\n"
        "{{agent_name}}",
    ),
    ("tour_request_confirm", "sms"): (
        None,
        "Hi {{first_name}}, thanks for asking to tour {{property_name}}. We'll confirm {{tour_time}} shortly.",
    ),
    ("tour_request_confirm", "email"): (
        "Your tour of {{property_name}}",
        "Hi {{first_name}},\n\nThanks for asking to tour {{property_name}}. We'll confirm {{tour_time}} shortly."
        "\n\n{{agent_name}}",
    ),
    ("tour_request_pick_time", "sms"): (
        None,
        "Hi {{first_name}}, thanks for asking to tour {{property_name}}! What day and time suit you?",
    ),
    ("tour_request_pick_time", "email"): (
        "Your tour of {{property_name}}",
        "Hi {{first_name}},\n\nThanks for asking to tour {{property_name}}. What day and time suit you?\n\n"
        "{{agent_name}}",
    ),
    # the automation engine's proactive steps (docs/automation.md)
    ("tour_reminder_24h", "sms"): (
        None,
        "Hi {{first_name}}, a reminder: your tour of {{property_name}} is {{tour_time}}. Please bring a photo ID.",
    ),
    ("tour_reminder_24h", "email"): (
        "Your tour of {{property_name}} is tomorrow",
        "Hi {{first_name}},\n\nA reminder: your tour of {{property_name}} is {{tour_time}}. Please bring a photo ID."
        "\n\n{{agent_name}}",
    ),
    ("tour_reminder_2h", "sms"): (None, "Hi {{first_name}}, see you soon at {{property_name}}: tour {{tour_time}}."),
    ("tour_reminder_2h", "email"): (
        "See you soon at {{property_name}}",
        "Hi {{first_name}},\n\nYour tour of {{property_name}} is {{tour_time}}. See you soon!\n\n{{agent_name}}",
    ),
    ("tour_follow_up_apply", "sms"): (
        None,
        "Thanks for touring {{property_name}}, {{first_name}}! Ready to apply? {{application_link}}",
    ),
    ("tour_follow_up_apply", "email"): (
        "Thanks for touring {{property_name}}",
        "Hi {{first_name}},\n\nThanks for touring {{property_name}}. When you are ready, you can apply here: "
        "{{application_link}}\n\n{{agent_name}}",
    ),
    ("tour_reschedule_offer", "sms"): (
        None,
        "Hi {{first_name}}, sorry we missed you at {{property_name}}. Would you like to pick a new tour time?",
    ),
    ("tour_reschedule_offer", "email"): (
        "Let's find another tour time",
        "Hi {{first_name}},\n\nSorry we missed you at {{property_name}}. Reply with a time that suits you and we'll "
        "set up a new tour.\n\n{{agent_name}}",
    ),
    ("reactivation_1", "sms"): (None, "Hi {{first_name}}, still looking for a home? {{property_name}} has openings."),
    ("reactivation_1", "email"): (
        "Still looking? {{property_name}}",
        "Hi {{first_name}},\n\nAre you still looking? {{property_name}} has homes available.\n\n{{agent_name}}",
    ),
    ("reactivation_2", "sms"): (None, "Hi {{first_name}}, want to see {{property_name}} this week? Reply with a time."),
    ("reactivation_2", "email"): (
        "A tour this week?",
        "Hi {{first_name}},\n\nWould you like to see {{property_name}} this week? Reply with a time.\n\n{{agent_name}}",
    ),
    ("reactivation_3", "sms"): (None, "Hi {{first_name}}, last check-in from {{property_name}}: still interested?"),
    ("reactivation_3", "email"): (
        "Still interested in {{property_name}}?",
        "Hi {{first_name}},\n\nA last check-in: are you still interested in {{property_name}}?\n\n{{agent_name}}",
    ),
    ("application_missing_steps", "sms"): (
        None,
        "Hi {{first_name}}, your application for {{property_name}} is almost done: {{application_link}}",
    ),
    ("application_missing_steps", "email"): (
        "Finish your application for {{property_name}}",
        "Hi {{first_name}},\n\nYour application for {{property_name}} still has a few steps left: "
        "{{application_link}}\n\n{{agent_name}}",
    ),
    ("invite_to_apply", "email"): (
        "You're invited to apply: {{property_name}}",
        "Hi {{first_name}},\n\n{{agent_name}} invited you to apply for {{property_name}}. {{application_link}}\n\n"
        "Reply to this email with any questions.",
    ),
    # the daily digest of newly available matching units (docs/tours.md); the send job appends the one-click
    # unsubscribe link to every renter email, and SMS carries STOP
    ("unit_digest", "email"): (
        "New homes that match your search: {{property_name}}",
        "Hi {{first_name}},\n\nThese homes became available since our last update and match what you are "
        "looking for:\n\n{{unit_list}}\n\nReply to this email to ask a question or book a tour.\n\n{{agent_name}}\n\n"
        "You get this daily update because you asked for it. To stop only this update: {{digest_stop_link}}",
    ),
    ("unit_digest", "sms"): (
        None,
        "Hi {{first_name}}, new at {{property_name}} for your search: {{unit_list}}. Reply to tour. Reply STOP to "
        "opt out.",
    ),
}
# an organization's template saved under the key the messaging bridge used before the engine sent first
# replies still answers for the engine's key (its own template of the new key wins)
LEGACY_KEYS: dict[str, str] = {
    "missed_call_text_back": "text_back",
    "web_form_ack": "acknowledgement",
    "ils_reply": "acknowledgement",
    "inquiry_ack": "acknowledgement",
    "question_ack": "acknowledgement",
    "tour_request_confirm": "acknowledgement",
    "tour_request_pick_time": "acknowledgement",
}
# the most valuable qualifying question not answered yet, as the renter reads it ({{question}})
QUESTIONS: dict[str | None, str] = {
    "move_in_date": "When are you hoping to move in?",
    "bedrooms": "How many bedrooms are you looking for?",
    "budget": "What monthly budget do you have in mind?",
    "pets": "Will any pets be moving in with you?",
    "tour_time": "When would you like to come for a tour?",
    None: "When would you like to come for a tour?",
}
DEFAULT_HELP_TEXT = (
    "{organization}: leasing messages. Reply STOP to opt out, START to opt back in. Msg&data rates may apply."
)

GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = set("^{}\\[~]|€\f")


def variables_in(text: str | None) -> list[str]:
    return list(dict.fromkeys(PLACEHOLDER.findall(text or "")))


def check_variables(fields: dict[str, str | None]) -> None:
    """422 naming each unknown variable and the field it is in."""
    errors = [
        {"field": f"body.{field}", "message": f"unknown variable '{name}'"}
        for field, text in fields.items()
        for name in variables_in(text)
        if name not in VARIABLES
    ]
    if errors:
        names = ", ".join(sorted({e["message"].split("'")[1] for e in errors}))
        raise ValidationFailed(f"Unknown template variable: {names}.", errors=errors)


def render(text: str | None, values: dict[str, str]) -> str:
    if text is None:
        return ""
    return PLACEHOLDER.sub(lambda m: values.get(m.group(1), ""), text)


@dataclass(frozen=True, slots=True)
class SmsLength:
    encoding: str  # gsm7 | ucs2
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    segments: int


def sms_length(body: str) -> SmsLength:
    if all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in body):
        units = sum(2 if ch in GSM7_EXTENSION else 1 for ch in body)
        single, multi, encoding = 160, 153, "gsm7"
    else:
        units = len(body.encode("utf-16-le")) // 2
        single, multi, encoding = 70, 67, "ucs2"
    segments = 0 if units == 0 else 1 if units <= single else -(-units // multi)
    return SmsLength(encoding, units, segments)


def check_sms_length(body: str, field: str = "body.body") -> SmsLength:
    length = sms_length(body)
    if length.segments > MAX_SMS_SEGMENTS:
        raise ValidationFailed(
            f"The SMS is {length.segments} segments ({length.encoding}); the limit is {MAX_SMS_SEGMENTS}.",
            errors=[{"field": field, "message": f"{length.segments} {length.encoding} segments"}],
        )
    return length
