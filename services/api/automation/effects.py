"""The one seam between the engine's decisions and the outside world (messages, notifications).

Every decision is recorded in the automation log (the "why"), then written to messaging: a message to the
outbox (which owns consent, quiet hours, pauses and the send), a notification to messaging's notify. The
first replies to a renter's touch go this way too, so the engine's "one renter, one conversation" decision
is what governs what the renter receives.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.api.automation import log
from services.api.messaging import notify as messaging_notify
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


def _decided(
    session: AsyncSession,
    lead: Lead,
    trigger: str,
    rule: RuleStamp | None,
    action: str,
    reason: str,
    data: dict[str, Any],
) -> uuid.UUID:
    return log.write(
        session,
        lead,
        trigger=trigger,
        outcome="decided",
        now=clock.now(),
        rule=rule,
        action=action,
        reason=reason,
        data=data,
    )


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
    variables: dict[str, str] | None = None,
) -> uuid.UUID:
    """Decide one outbound message (messaging's outbox owns consent, quiet hours and the actual send)."""
    entry_id = _decided(
        session,
        lead,
        trigger,
        rule,
        SEND,
        reason,
        {
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
    await _outbox(
        session,
        lead=lead,
        channel=channel,
        template=template,
        body=body,
        subject=subject,
        kind=kind,
        reason=reason,
        rule=rule,
        idempotency_key=idempotency_key,
        not_before=not_before,
        variables=variables,
    )
    return entry_id


async def _outbox(session: AsyncSession, *, rule: RuleStamp | None, idempotency_key: str, **fields: Any) -> None:
    await queue_message(
        session,
        rule={"id": rule.id, "version": rule.version, "scope": rule.scope} if rule else None,
        idempotency_key=f"automation:{idempotency_key}",
        **fields,
    )


async def record_unsent(
    session: AsyncSession,
    *,
    lead: Lead,
    channel: str,
    template: str,
    kind: str,
    reason: str,
    rule: RuleStamp,
    idempotency_key: str,
) -> None:
    """A message automation would have sent but the lead is paused: the outbox keeps it as suppressed, with
    the pause as its reason (no "decided" entry: nothing was decided to go out)."""
    await _outbox(
        session,
        lead=lead,
        channel=channel,
        template=template,
        kind=kind,
        reason=reason,
        rule=rule,
        idempotency_key=idempotency_key,
    )


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
    key: str | None = None,
) -> None:
    """Tell people (a feed entry and/or an email each, per their preferences); `key` makes a repeat a no-op."""
    if lead is not None:
        people = {"user_ids": [str(user) for user in user_ids], "title": title, "body": body}
        _decided(session, lead, trigger, rule, NOTIFY, kind, {**people, **(data or {})})
    await messaging_notify.notify(
        session,
        org_id=org_id,
        user_ids=user_ids,
        kind=kind,
        lead_id=lead_id,
        title=title,
        body=body,
        data=data,
        key=key,
    )
