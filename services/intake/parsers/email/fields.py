"""Shared tools for email templates: label lookups on flattened lines, link mining, signal assembly."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qs, unquote, urlsplit

from services.intake.parsers.base import ParseContext, RawInbound
from services.intake.parsers.email.mime import InboundEmail
from shared.enums import Channel, SignalEvent
from shared.normalize import normalize_email, normalize_phone
from shared.schemas.signal import (
    LeadSignal,
    PropertyHint,
    SignalContact,
    SignalPreferences,
    SignalSource,
)

EMAIL_IN_TEXT = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")


@dataclass(frozen=True, slots=True)
class Env:
    """What a template needs besides the email: the delivery and the organization's settings."""

    raw: RawInbound
    ctx: ParseContext

    def reference(self, mail: InboundEmail) -> datetime:
        """Dates in the mail are relative to its Date header, else to when we received it."""
        return mail.date or self.raw.received_at


def domain_is(domain: str, *roots: str) -> bool:
    """True when `domain` is one of `roots` or a subdomain of one (forrent.com is not rent.com)."""
    return any(domain == root or domain.endswith("." + root) for root in roots)


def label_value(lines: list[str], *labels: str, max_gap: int = 1) -> str | None:
    """Value written after `Label:` on the same line, or on the next line when the label stands alone."""
    for label in labels:
        pattern = re.compile(rf"^\*?(?:\[{label}\]\s*(.*)|{label}\s*\*?\s*(?::\s*(.*)|$))", re.IGNORECASE)
        for index, line in enumerate(lines):
            match = pattern.match(line)
            if not match:
                continue
            value = (match.group(1) or match.group(2) or "").strip()
            if value:
                return value
            for following in lines[index + 1 : index + 1 + max_gap]:
                if following:
                    return following
    return None


def index_of(lines: list[str], pattern: str, start: int = 0) -> int | None:
    compiled = re.compile(pattern, re.IGNORECASE)
    for index in range(start, len(lines)):
        if compiled.search(lines[index]):
            return index
    return None


def mailto_addresses(mail: InboundEmail, exclude_domains: tuple[str, ...] = ()) -> list[str]:
    found = []
    for href, _ in mail.links:
        if href.lower().startswith("mailto:"):
            addr = normalize_email(href)
            if addr and not addr.endswith(exclude_domains) and addr not in found:
                found.append(addr)
    return found


def tel_numbers(mail: InboundEmail, region: str) -> list[tuple[str, str | None]]:
    found = []
    for href, _ in mail.links:
        if href.lower().startswith(("tel:", "callto:")):
            e164, extension = normalize_phone(href, region)
            if e164:
                found.append((e164, extension))
    return found


def link_param(mail: InboundEmail, name: str) -> str | None:
    """A query parameter of any link (Zillow Rental Manager hides the phone in `phone=`)."""
    for href, _ in mail.links:
        try:
            values = parse_qs(urlsplit(href).query).get(name)
        except ValueError:
            continue
        if values and values[0].strip():
            return unquote(values[0].strip())
    return None


def emails_in_text(text: str, exclude_domains: tuple[str, ...] = ()) -> list[str]:
    found = []
    for candidate in EMAIL_IN_TEXT.findall(text or ""):
        addr = normalize_email(candidate)
        if addr and not addr.endswith(exclude_domains) and addr not in found:
            found.append(addr)
    return found


def inbound_alias(mail: InboundEmail, ctx: ParseContext) -> str | None:
    """The address of ours the mail was sent to: configured aliases first, then the envelope, then To."""
    for addr in [mail.envelope_to, *mail.to_addrs]:
        if addr and addr in ctx.own_emails:
            return addr
    return mail.envelope_to or (mail.to_addrs[0] if mail.to_addrs else None)


def base_ids(mail: InboundEmail) -> dict[str, str]:
    ids = {}
    if mail.message_id:
        ids["message_id"] = mail.message_id
    for header, key in (("x-nid", "x_nid"), ("x-cid", "x_cid")):
        if mail.headers.get(header):
            ids[key] = mail.headers[header]
    return ids


def strip_quotes(text: str | None) -> str | None:
    if not text:
        return None
    cleaned = text.strip().strip('"“”').strip()
    return cleaned or None


def finish(
    mail: InboundEmail,
    env: Env,
    *,
    source: SignalSource,
    contact: SignalContact,
    event: SignalEvent = SignalEvent.inquiry,
    message: str | None = None,
    preferences: SignalPreferences | None = None,
    property_hint: PropertyHint | None = None,
    external_ids: dict[str, str] | None = None,
    channel: Channel = Channel.ils,
) -> LeadSignal:
    """The signal every template returns, with the mail-level facts filled the same way."""
    hint = property_hint or PropertyHint()
    if hint.inbound_alias is None:
        hint.inbound_alias = inbound_alias(mail, env.ctx)
    ids = base_ids(mail)
    ids.update(external_ids or {})
    if contact.reply_to:
        ids.setdefault("relay", contact.reply_to)
    return LeadSignal(
        event=event,
        channel=channel,
        occurred_at=env.reference(mail),
        contact=contact,
        source=source,
        property=hint,
        preferences=preferences or SignalPreferences(),
        message=message,
        subject=mail.subject or None,
        external_ids=ids,
    )
