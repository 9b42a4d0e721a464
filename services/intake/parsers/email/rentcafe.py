"""RentCafe (Yardi) prospect mail: fields are spans tagged `data-selenium-id`; the Voyager prospect code
is a dedup key the PMS already knows, so it goes to external_ids."""

from __future__ import annotations

import re

from bs4 import BeautifulSoup

from services.intake.parsers.base import ParseResult
from services.intake.parsers.common import build_contact
from services.intake.parsers.email.fields import Env, domain_is, finish, label_value
from services.intake.parsers.email.mime import InboundEmail
from shared.enums import SignalEvent
from shared.schemas.signal import SignalSource

FIELDS = (
    "ProspectName",
    "ProspectPhone",
    "ProspectAltPhone",
    "ProspectEmail",
    "ProspectComments",
    "ProspectMatch",
)


def matches(mail: InboundEmail) -> bool:
    return domain_is(mail.from_domain, "rentcafe.com") or mail.subject.strip().lower() == "portal information request"


def _spans(html: str | None) -> dict[str, str]:
    if not html:
        return {}
    soup = BeautifulSoup(html, "html.parser")
    found = {}
    for key in FIELDS:
        node = soup.find(None, attrs={"data-selenium-id": key})
        if node is not None:
            found[key] = node.get_text(" ", strip=True)
    return found


def parse(mail: InboundEmail, env: Env) -> ParseResult:
    spans = _spans(mail.html)
    lines = mail.body_lines
    name = spans.get("ProspectName") or label_value(lines, "Name")
    phone = spans.get("ProspectPhone") or spans.get("ProspectAltPhone") or label_value(lines, "Phone")
    email = spans.get("ProspectEmail") or label_value(lines, "Email")
    match_text = spans.get("ProspectMatch") or " ".join(lines)
    voyager = re.search(r"Voyager Code:\s*([A-Za-z]\d+)", match_text)
    alert = "availability alert" in " ".join(lines).lower()
    signal = finish(
        mail,
        env,
        source=SignalSource(source="rentcafe", sub_source="availability_alert" if alert else None),
        contact=build_contact(name=name, email=email, phone=phone, region=env.ctx.default_country),
        event=SignalEvent.inquiry,
        message=spans.get("ProspectComments") or label_value(lines, "Comments"),
        external_ids={"voyager_code": voyager.group(1).lower()} if voyager else {},
    )
    return ParseResult.ok(signal, parser="email.rentcafe")
