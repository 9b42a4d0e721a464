"""Facebook ad leads forwarded by agencies (CLX Media style): `Name :` rows and `Lead Channel: Facebook Ad`.

Matched on the body marker, not the sender, because each agency mails from its own domain.
"""

from __future__ import annotations

import re

from services.intake.parsers.base import ParseResult
from services.intake.parsers.common import build_contact
from services.intake.parsers.email.fields import Env, finish, label_value
from services.intake.parsers.email.mime import InboundEmail
from shared.normalize import parse_move_in
from shared.schemas.signal import PropertyHint, SignalPreferences, SignalSource

MARKER = re.compile(r"^lead channel\s*:\s*facebook", re.IGNORECASE | re.MULTILINE)


def matches(mail: InboundEmail) -> bool:
    return bool(MARKER.search("\n".join(mail.body_lines)))


def parse(mail: InboundEmail, env: Env) -> ParseResult:
    lines = mail.body_lines
    move_in, move_text = parse_move_in(label_value(lines, "Move In Date", "Move Date"), env.reference(mail))
    signal = finish(
        mail,
        env,
        source=SignalSource(source="facebook_ads", sub_source=mail.from_domain or None),
        contact=build_contact(
            name=label_value(lines, "Name"),
            email=label_value(lines, "Email"),
            phone=label_value(lines, "Phone"),
            region=env.ctx.default_country,
        ),
        message=label_value(lines, "Comments", "Message"),
        preferences=SignalPreferences(move_in_date=move_in, move_in_text=move_text),
        property_hint=PropertyHint(name=label_value(lines, "Property", "Community")),
    )
    return ParseResult.ok(signal, parser="email.facebook_ads")
