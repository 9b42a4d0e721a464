"""Fallback for mail no template claims: the sender is the contact and the body is the message.

A renter answering our earlier email (In-Reply-To / References / `Re:`) is a `reply`, threaded by the
message ids so the API can attach it to the right conversation. Unknown automated senders (no-reply
addresses) are ignored rather than turned into a contact named "noreply".
"""

from __future__ import annotations

import re

from services.intake.parsers.base import ParseResult
from services.intake.parsers.common import build_contact
from services.intake.parsers.email.fields import Env, finish
from services.intake.parsers.email.mime import InboundEmail, strip_quoted
from shared.enums import Channel, SignalEvent
from shared.normalize import is_relay_email
from shared.schemas.signal import SignalSource

NO_REPLY = re.compile(r"^(no-?reply|do-?not-?reply|donotreply|notifications?|alerts?|mailer)\b", re.IGNORECASE)
REPLY_SUBJECT = re.compile(r"^\s*(re|aw|sv|antw)\s*(\[\d+\])?\s*:", re.IGNORECASE)


def _thread_ids(mail: InboundEmail) -> dict[str, str]:
    ids: dict[str, str] = {}
    if mail.in_reply_to:
        ids["thread"] = mail.in_reply_to
    if mail.references:
        refs = re.findall(r"<([^<>\s]+)>", mail.references)
        if refs:
            ids["thread_root"] = refs[0]
            ids.setdefault("thread", refs[-1])
    return ids


def parse(mail: InboundEmail, env: Env) -> ParseResult:
    contact_addr = mail.reply_to_addr or mail.from_addr
    if not contact_addr:
        return ParseResult.failed("email without sender", parser="email.generic")
    if NO_REPLY.match(contact_addr) and not mail.reply_to_addr:
        return ParseResult.ignored("automated sender without template", parser="email.generic")
    relay = mail.reply_to_addr if is_relay_email(mail.reply_to_addr) else None
    name = mail.reply_to_name if mail.reply_to_addr and mail.reply_to_name else mail.from_name
    contact = build_contact(
        name=name,
        email=mail.from_addr if relay else contact_addr,
        reply_to=relay,
        region=env.ctx.default_country,
    )
    thread = _thread_ids(mail)
    is_reply = bool(thread) or bool(REPLY_SUBJECT.match(mail.subject or ""))
    message = strip_quoted(mail.text) if mail.text else strip_quoted(mail.html_text)
    if message and len(message) > 5000:
        message = message[:5000]
    signal = finish(
        mail,
        env,
        source=SignalSource(source="email"),
        contact=contact,
        event=SignalEvent.reply if is_reply else SignalEvent.inquiry,
        message=message,
        external_ids=thread,
        channel=Channel.email,
    )
    return ParseResult.ok(signal, parser="email.generic")
