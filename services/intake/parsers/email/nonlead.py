"""Mail that reaches the lead inbox but is not a renter: bounces, auto-replies, newsletters.

Bounces and auto-replies are checked before any template (an out-of-office reply quoting a lead would
otherwise parse as the lead again); newsletter signals only after templates, because a real lead has a
lead template subject even if its sender adds List-Unsubscribe.
"""

from __future__ import annotations

import re

from services.intake.parsers.email.fields import domain_is
from services.intake.parsers.email.mime import InboundEmail

MARKETING_DOMAINS = (
    "info.zumper.com",
    "email.costar.com",
    "email.homes.com",
    "mail.zillow.com",
    "e.zillow.com",
    "email.apartments.com",
    "news.rent.com",
    "marketing.rentcafe.com",
    "email.realtor.com",
)
BOUNCE_SENDERS = re.compile(r"^(mailer-daemon|postmaster|mail-daemon)@", re.IGNORECASE)
AUTO_SUBJECT = re.compile(
    r"^(automatic reply|auto(matic)?[- ]?reply|autoreply|out of (the )?office|ooo\b|auto:|"
    r"away from (the )?office|i am out of the office|abwesenheit)",
    re.IGNORECASE,
)
BOUNCE_SUBJECT = re.compile(
    r"^(undeliverable|undelivered mail|delivery status notification|mail delivery (failed|failure|subsystem)|"
    r"returned mail|failure notice)",
    re.IGNORECASE,
)


def delivery_or_auto_reason(mail: InboundEmail) -> str | None:
    """Reason to ignore a bounce or automatic reply, else None."""
    if mail.content_type == "multipart/report" or "report-type" in mail.headers.get("content-type", ""):
        return "delivery status report"
    if BOUNCE_SENDERS.match(mail.from_addr or "") or BOUNCE_SUBJECT.match(mail.subject.strip()):
        return "delivery status report"
    auto = mail.headers.get("auto-submitted", "").strip().lower()
    if auto and auto != "no":
        return "auto-reply"
    if mail.headers.get("x-autoreply") or mail.headers.get("x-autorespond"):
        return "auto-reply"
    if AUTO_SUBJECT.match(mail.subject.strip()):
        return "out of office"
    return None


def bulk_reason(mail: InboundEmail) -> str | None:
    """Reason to ignore marketing mail that matched no lead template, else None."""
    domain = mail.from_domain
    if domain_is(domain, *MARKETING_DOMAINS):
        return "newsletter"
    precedence = mail.headers.get("precedence", "").strip().lower()
    if precedence in ("bulk", "list", "junk"):
        return "newsletter"
    if mail.headers.get("list-unsubscribe") and (mail.headers.get("list-id") or "unsubscribe" in mail.text.lower()):
        return "newsletter"
    return None
