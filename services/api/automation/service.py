"""Reading and saving rule sets, the dry run, and the explanations ("why this next action?")."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.auth.service import Principal
from services.api.automation import log, rules, scheduler
from services.api.automation.evaluate import evaluate, make_ctx
from services.api.automation.schemas import (
    Decision,
    EffectiveRule,
    NextActionOut,
    RuleRef,
    RuleSetDocument,
    RuleSetOut,
    RuleSetVersion,
    RuleTestRequest,
    RuleTestResult,
)
from services.api.leads import status as lead_status
from services.api.leads.deps import load_lead
from shared import clock
from shared.enums import ConsentState, NextActionType
from shared.errors import Conflict, NotFound, ValidationFailed
from shared.models import AutomationLog, Contact, Lead, ScheduledAction
from shared.queue import PENDING_JOBS_KEY


async def get_rules(
    session: AsyncSession, org_id: uuid.UUID, property_id: uuid.UUID | None, version: int | None = None
) -> RuleSetOut:
    scope = await rules.scope_for(session, org_id, property_id)
    saved = await rules.versions(session, org_id, scope)
    chosen = saved[0] if saved else None
    if version is not None:
        chosen = next((row for row in saved if row.version == version), None)
        if chosen is None:
            raise NotFound(f"Version {version} of these rules does not exist.")
    document = RuleSetDocument.model_validate(chosen.document) if chosen else RuleSetDocument()
    book = await rules.load_book(session, org_id, property_id, override=(scope, document) if chosen else None)
    return RuleSetOut(
        scope="property" if property_id else "organization",
        property_id=property_id,
        version=chosen.version if chosen else 0,
        document=document,
        effective=[
            EffectiveRule(
                rule=bound.rule.model_dump(mode="json"),
                scope=bound.stamp.scope,
                version=chosen.version if chosen and bound.stamp.scope == scope else bound.stamp.version,
            )
            for bound in book.rules
        ],
        sequences={name: bound.sequence.model_dump(mode="json") for name, bound in book.sequences.items()},
        settings=book.settings,
        versions=[
            RuleSetVersion(version=r.version, created_at=r.created_at, created_by_id=r.created_by_id) for r in saved
        ],
    )


async def put_rules(
    session: AsyncSession, principal: Principal, property_id: uuid.UUID | None, document: RuleSetDocument
) -> RuleSetOut:
    scope = await rules.scope_for(session, principal.org_id, property_id)
    lower = await rules.load_book(session, principal.org_id, None if scope == rules.ORG_SCOPE else property_id)
    rules.validate_references(document, lower)
    await rules.save(session, principal.org_id, scope, document, principal.user_id, property_id)
    return await get_rules(session, principal.org_id, property_id)


def _decision(entry: AutomationLog) -> Decision:
    data = dict(entry.data or {})
    actions: list[dict[str, Any]] = data.pop("actions", None) or (
        [{"type": entry.action, **data}] if entry.action else []
    )
    return Decision(
        action=entry.action,
        rule=entry.rule_id,
        version=entry.rule_version,
        scope=entry.rule_scope,
        outcome=entry.outcome,
        reason=entry.reason,
        actions=actions,
    )


async def test_rules(session: AsyncSession, principal: Principal, body: RuleTestRequest) -> RuleTestResult:
    """Run the real engine in a savepoint that is always rolled back: what would happen, changing nothing."""
    if body.event is None and body.status is None:
        raise ValidationFailed("Give an event or a status.", errors=[{"field": "body.event", "message": "required"}])
    org_id = principal.org_id
    override = None
    if body.document is not None:
        scope = await rules.scope_for(session, org_id, body.property_id)
        rules.validate_references(body.document, await rules.load_book(session, org_id, None))
        override = (scope, body.document)
    jobs_before = list(session.info.get(PENDING_JOBS_KEY, []))
    collected: list[AutomationLog] = []
    token = log.collecting.set(collected)
    savepoint = await session.begin_nested()
    try:
        now = clock.now()
        if body.lead_id is not None:
            lead = await load_lead(session, org_id, body.lead_id, lock=True)
        else:
            lead = await _sample_lead(session, org_id, body)
        book = await rules.load_book(session, org_id, lead.property_id, override=override)
        if body.status is not None and body.status != lead.status:
            lead_status.apply_status(lead, body.status, now, lost_reason="other" if body.status == "lost" else None)
        data = {"channel": body.channel, "source": body.source, "event_key": "dry-run"}
        ctx = await evaluate(session, lead, now, event=body.event, status=body.status, data=data, book=book)
        next_action = None
        if lead.next_action_type is not None:
            next_action = {
                "type": lead.next_action_type,
                "due_at": lead.next_action_due_at.isoformat() if lead.next_action_due_at else None,
                "owner_id": str(lead.next_action_owner_id) if lead.next_action_owner_id else None,
                "source": lead.next_action_source,
            }
        decisions = [_decision(entry) for entry in collected]
        trigger = ctx.trigger
    finally:
        await savepoint.rollback()
        log.collecting.reset(token)
        session.info[PENDING_JOBS_KEY] = jobs_before
    return RuleTestResult(trigger=trigger, decisions=decisions, next_action=next_action)


async def _sample_lead(session: AsyncSession, org_id: uuid.UUID, body: RuleTestRequest) -> Lead:
    if body.property_id is not None:
        await rules.scope_for(session, org_id, body.property_id)  # 404 for another organization's property
    now = clock.now()
    contact = Contact(
        id=uuid.uuid4(),
        org_id=org_id,
        kind=body.lead_kind.value,
        full_name="Sample Renter",
        primary_email="sample.renter@example.invalid",
        primary_phone="+15555550100",
        sms_consent=ConsentState.unknown if body.can_text else ConsentState.opted_out,
        email_consent=ConsentState.unknown,
    )
    lead = Lead(
        id=uuid.uuid4(),
        org_id=org_id,
        contact_id=contact.id,
        property_id=body.property_id,
        kind=body.lead_kind.value,
        status=body.lead_status.value,
        temperature="hot",
        source=body.source,
        latest_source=body.source,
        preferred_tour_times=[],
        reached_rank=0,
        version=1,
        created_at=now,
        updated_at=now,
        last_touch_at=now,
    )
    session.add(contact)
    await session.flush()
    session.add(lead)
    await session.flush()
    return lead


async def next_action(session: AsyncSession, lead: Lead) -> NextActionOut:
    source = lead.next_action_source or {}
    rule_ref = None
    log_id = None
    if source.get("set_by") == "rule":
        log_id = uuid.UUID(source["log_id"]) if source.get("log_id") else None
        name = ""
        if log_id is not None:
            entry = await session.scalar(select(AutomationLog.data).where(AutomationLog.id == log_id))
            name = str((entry or {}).get("name") or "")
        rule_ref = RuleRef(id=source["rule"], name=name, version=int(source["version"]), scope=source["scope"])
    pending = (
        await session.execute(
            select(ScheduledAction)
            .where(ScheduledAction.lead_id == lead.id, ScheduledAction.status == "pending")
            .order_by(ScheduledAction.due_at)
            .limit(50)
        )
    ).scalars()
    steps = [
        {
            "id": str(row.id),
            "kind": row.kind,
            "rule": row.rule_id,
            "version": row.rule_version,
            "scope": row.rule_scope,
            "sequence": row.sequence,
            "step": row.step,
            "due_at": row.due_at.isoformat(),
        }
        for row in pending
    ]
    decided = source.get("decided_at")
    return NextActionOut(
        lead_id=lead.id,
        type=lead.next_action_type,
        due_at=lead.next_action_due_at,
        owner_id=lead.next_action_owner_id,
        set_by=source.get("set_by") if lead.next_action_type else None,
        rule=rule_ref if lead.next_action_type else None,
        trigger=source.get("trigger"),
        decided_at=decided,
        log_id=log_id,
        pending_steps=steps,
    )


TAKEOVER = "takeover"


async def take_over(session: AsyncSession, principal: Principal, lead: Lead) -> NextActionOut:
    """A person takes the conversation: automation pauses, pending sequence steps stop (`human_takeover`),
    and the next step is theirs, now."""
    if lead.status in ("lost", "leased"):
        raise Conflict("A closed lead has no conversation to take over.")
    now = clock.now()
    ctx = await make_ctx(session, lead, now)
    ctx.trigger = TAKEOVER
    if lead.automation_paused_at is None:
        lead.automation_paused_at = now
        lead.automation_paused_reason = TAKEOVER
    stopped = await scheduler.suppress_sequences(ctx, "human_takeover")
    lead.next_action_type = NextActionType.reply.value
    lead.next_action_due_at = now
    lead.next_action_owner_id = principal.user_id or await ctx.owner()
    lead.next_action_source = {"set_by": "user", "decided_at": now.isoformat(), "trigger": TAKEOVER}
    lead.version += 1
    lead.updated_at = now
    log.write(
        session,
        lead,
        trigger=TAKEOVER,
        outcome="fired",
        now=now,
        rule=None,
        reason="a person took over",
        data={"user_id": str(principal.user_id) if principal.user_id else None, "suppressed_steps": stopped},
    )
    await session.flush()
    return await next_action(session, lead)


async def release(session: AsyncSession, principal: Principal, lead: Lead) -> NextActionOut:
    """Hand the conversation back to automation (only a takeover; a sensitive conversation is resolved in review)."""
    if lead.automation_paused_at is not None:
        if lead.automation_paused_reason != TAKEOVER:
            raise Conflict(
                f"Automation is paused for {lead.automation_paused_reason}; resolve that instead.",
                paused_reason=lead.automation_paused_reason,
            )
        now = clock.now()
        lead.automation_paused_at = None
        lead.automation_paused_reason = None
        lead.version += 1
        lead.updated_at = now
        log.write(
            session,
            lead,
            trigger=TAKEOVER,
            outcome="fired",
            now=now,
            reason="handed back to automation",
            data={"user_id": str(principal.user_id) if principal.user_id else None},
        )
        await session.flush()
    return await next_action(session, lead)
