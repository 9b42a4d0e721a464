"""Parser dispatch: one stored delivery in, a ParseResult out, never an exception.

A parser bug or a hostile payload must at worst mark one inbound row failed, so every exception becomes
`failed` with a short reason naming the exception type only (payload text may hold personal data).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import structlog

from services.intake.parsers import (
    callrail,
    mits,
    ringcentral,
    twilio_sms,
    twilio_voice,
    web_form,
    webflow,
    zillow_post,
)
from services.intake.parsers import email as email_parsers
from services.intake.parsers.base import (
    Outcome,
    ParseContext,
    ParseError,
    ParseResult,
    RawInbound,
)
from shared.enums import InboundKind
from shared.identity import identity_email, phone_identity

__all__ = ["Outcome", "ParseContext", "ParseError", "ParseResult", "RawInbound", "parse"]

Parser = Callable[[RawInbound, ParseContext], ParseResult]
PARSERS: dict[InboundKind, Parser] = {
    InboundKind.email: email_parsers.parse,
    InboundKind.sendgrid: email_parsers.parse,
    InboundKind.mailgun: email_parsers.parse,
    InboundKind.postmark: email_parsers.parse,
    InboundKind.zillow: zillow_post.parse,
    InboundKind.mits: mits.parse,
    InboundKind.web_form: web_form.parse,
    InboundKind.webflow: webflow.parse,
    InboundKind.callrail: callrail.parse,
    InboundKind.twilio_voice: twilio_voice.parse,
    InboundKind.twilio_sms: twilio_sms.parse,
    InboundKind.ringcentral: ringcentral.parse,
}
log = structlog.get_logger(__name__)


def parse(raw: RawInbound, ctx: ParseContext | None = None) -> ParseResult:
    """Parse one delivery; the result says signal, ignored (with reason) or failed (with reason)."""
    context = ctx or ParseContext()
    try:
        kind = InboundKind(raw.kind)
    except ValueError:
        return ParseResult.failed("unknown inbound kind")
    parser = PARSERS.get(kind)
    if parser is None:
        return ParseResult.failed("no parser for kind")
    if not raw.body or not raw.body.strip():
        return ParseResult.failed("empty body", parser=kind.value)
    try:
        result = parser(raw, context)
    except ParseError as exc:
        return ParseResult.failed(str(exc)[:120] or "unreadable payload", parser=kind.value)
    except Exception as exc:  # a parser bug must not kill the worker; details stay out of the reason
        log.warning("intake.parser_crashed", kind=kind.value, error_type=type(exc).__name__)
        return ParseResult.failed(f"parser error: {type(exc).__name__}", parser=kind.value)
    return screened(result, context.blocked)


def screened(result: ParseResult, blocked: frozenset[tuple[str, str]]) -> ParseResult:
    """The organization's never-identity values leave the contact, by the same rule the API applies."""
    signal = result.signal
    if signal is None or not blocked:
        return result
    contact = signal.contact
    email = identity_email(contact.email, blocked) if contact.email else None
    phone = phone_identity(contact.phone, blocked)[0] if contact.phone else None
    if (email, phone) == (contact.email, contact.phone):
        return result
    changes = {"email": email, "phone": phone, "phone_extension": contact.phone_extension if phone else None}
    return replace(result, signal=signal.model_copy(update={"contact": contact.model_copy(update=changes)}))
