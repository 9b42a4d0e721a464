"""Email leads: every transport becomes one InboundEmail, then one pipeline decides what it is.

Order matters: bounces and auto-replies are dropped first, then the ILS templates get their chance, then
bulk mail is dropped, and whatever is left is a person writing to us (generic).
"""

from __future__ import annotations

from types import ModuleType

from services.intake.parsers.base import ParseContext, ParseResult, RawInbound
from services.intake.parsers.email import (
    apartments_com,
    apartmentsearch,
    facebook_ads,
    forrent,
    generic,
    mailgun,
    mime,
    nonlead,
    postmark,
    realtor,
    rentcafe,
    rentpath,
    sendgrid,
    streeteasy,
    zillow,
    zumper,
)
from services.intake.parsers.email.fields import Env
from services.intake.parsers.email.mime import InboundEmail
from shared.enums import InboundKind

TEMPLATES: tuple[ModuleType, ...] = (
    zillow,
    streeteasy,
    zumper,
    apartments_com,
    rentpath,
    realtor,
    rentcafe,
    forrent,
    apartmentsearch,
    facebook_ads,
)
TRANSPORTS = {
    InboundKind.sendgrid: sendgrid.to_email,
    InboundKind.mailgun: mailgun.to_email,
    InboundKind.postmark: postmark.to_email,
}


def to_email(raw: RawInbound) -> InboundEmail:
    transport = TRANSPORTS.get(raw.kind)
    return transport(raw) if transport else mime.from_bytes(raw.body)


def parse_email(mail: InboundEmail, raw: RawInbound, ctx: ParseContext) -> ParseResult:
    if not (mail.from_addr or mail.reply_to_addr):
        return ParseResult.failed("email without sender", parser="email")
    reason = nonlead.delivery_or_auto_reason(mail)
    if reason:
        return ParseResult.ignored(reason, parser="email.nonlead")
    if mail.from_addr in ctx.own_emails and not mail.forwarded:
        return ParseResult.ignored("sent by our own address", parser="email.nonlead")
    env = Env(raw=raw, ctx=ctx)
    for template in TEMPLATES:
        if template.matches(mail):
            result: ParseResult = template.parse(mail, env)
            return result
    reason = nonlead.bulk_reason(mail)
    if reason:
        return ParseResult.ignored(reason, parser="email.nonlead")
    return generic.parse(mail, env)


def parse(raw: RawInbound, ctx: ParseContext) -> ParseResult:
    """Entry point for kinds email, sendgrid, mailgun and postmark."""
    return parse_email(to_email(raw), raw, ctx)
