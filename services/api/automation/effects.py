"""The one seam between the engine's decisions and the outside world (messages, notifications).

Every decision is recorded in the automation log (the "why"). Proactive steps (tour reminders, the
reactivation sequence, application reminders, no-show and after-tour follow-ups) are then written to the
messaging outbox, which owns consent, quiet hours, pauses and the send. The first replies to a renter's own
touch (text-back, acknowledgement, tour-request answers) are sent by messaging's intake bridge
(`messaging/rules_bridge.py`), so they are logged here and not queued twice.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.api.automation import log
from services.api.messaging.outbox import queue_message
from shared import clock
from shared.models import Lead

SEND = "send_template"
NOTIFY = "notify"


@dataclass(frozen=True, slots=True)
class RuleStamp:
    id: str
    version: int
    scope: str


async def send(
    session: AsyncSession,
    *,
    lead: Lead,
    channel: str | None = None,
    template: str | None = None,
    body: str | None = None,
    subject: str | None = None,
    kind: str,
    reason: str,
    rule: RuleStamp | None = None,
    idempotency_key: str,
    not_before: datetime | None = None,
    trigger: str = "",
    data: dict[str, Any] | None = None,
) -> uuid.UUID:
    """Decide one outbound message (messaging's outbox owns consent, quiet hours and the actual send)."""
    entry = log.write(
        session,
        lead,
        trigger=trigger,
        outcome="decided",
        now=clock.now(),
        rule=rule,
        action=SEND,
        reason=reason,
        data={
            "template": template,
            "channel": channel,
            "kind": kind,
            "idempotency_key": idempotency_key,
            "subject": subject,
            "body": body,
            "not_before": not_before.isoformat() if not_before else None,
            **(data or {}),
        },
    )
    if kind == "proactive":
        await queue_message(
            session,
            lead=lead,
            channel=channel,
            template=template,
            body=body,
            subject=subject,
            kind=kind,
            reason=reason,
            rule={"id": rule.id, "version": rule.version, "scope": rule.scope} if rule else None,
            idempotency_key=f"automation:{idempotency_key}",
            not_before=not_before,
        )
    return entry.id


async def notify(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    user_ids: list[uuid.UUID],
    kind: str,
    lead_id: uuid.UUID,
    title: str,
    body: str,
    data: dict[str, Any] | None = None,
    lead: Lead | None = None,
    rule: RuleStamp | None = None,
    trigger: str = "",
) -> None:
    if lead is None:
        return
    log.write(
        session,
        lead,
        trigger=trigger,
        outcome="decided",
        now=clock.now(),
        rule=rule,
        action=NOTIFY,
        reason=kind,
        data={"user_ids": [str(user) for user in user_ids], "title": title, "body": body, **(data or {})},
    )
