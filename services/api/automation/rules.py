"""Rule sets: the shipped defaults, overridden by the organization, then by the property. Every save is a new
version; old versions are kept and readable, and each decision names the version it used."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from services.api import txmemo
from services.api.automation.defaults import DEFAULT_SCOPE, DEFAULTS, DEFAULTS_VERSION
from services.api.automation.effects import RuleStamp
from services.api.automation.schemas import (
    ActionPlan,
    AutomationSettings,
    Rule,
    RuleSetDocument,
    Sequence,
    StatusTrigger,
)
from shared.errors import NotFound, ValidationFailed
from shared.models import AutomationRuleSet, Property, StatusLabel

ORG_SCOPE = "org"


def property_scope(property_id: uuid.UUID) -> str:
    return f"property:{property_id}"


def label_scope(label_id: uuid.UUID) -> str:
    return f"label:{label_id}"


@dataclass(frozen=True, slots=True)
class BoundRule:
    rule: Rule
    stamp: RuleStamp


@dataclass(frozen=True, slots=True)
class BoundSequence:
    sequence: Sequence
    stamp: RuleStamp


@dataclass
class RuleBook:
    rules: list[BoundRule]
    sequences: dict[str, BoundSequence]
    settings: AutomationSettings
    versions: dict[str, int] = field(default_factory=dict)


def _stamp(rule_id: str, scope: str, version: int) -> RuleStamp:
    return RuleStamp(rule_id, version, scope)


def merge(layers: list[tuple[str, int, RuleSetDocument]]) -> RuleBook:
    """Lower layers first; a rule or sequence with the same id in a higher layer replaces the lower one."""
    rules: dict[str, BoundRule] = {}
    sequences: dict[str, BoundSequence] = {}
    settings = AutomationSettings()
    for scope, version, document in layers:
        for rule in document.rules:
            rules[rule.id] = BoundRule(rule, _stamp(rule.id, scope, version))
        for name, sequence in document.sequences.items():
            sequences[name] = BoundSequence(sequence, _stamp(name, scope, version))
        if document.settings is not None:
            settings = document.settings
    return RuleBook(list(rules.values()), sequences, settings, {scope: version for scope, version, _ in layers})


_parsed: dict[uuid.UUID, RuleSetDocument] = {}  # rows are immutable: a parsed version stays right forever


def _parse(row_id: uuid.UUID, document: dict[str, Any]) -> RuleSetDocument:
    parsed = _parsed.get(row_id)
    if parsed is None:
        parsed = RuleSetDocument.model_validate(document)
        if len(_parsed) > 5000:
            _parsed.clear()
        _parsed[row_id] = parsed
    return parsed


_LATEST_SQL = text(
    """
    SELECT DISTINCT ON (scope) id, scope, version, document FROM automation_rule_sets
    WHERE org_id = :org_id AND scope = ANY(:scopes)
    ORDER BY scope, version DESC
    """
)


async def latest_documents(
    session: AsyncSession, org_id: uuid.UUID, scopes: list[str]
) -> dict[str, tuple[int, RuleSetDocument]]:
    rows = await session.execute(_LATEST_SQL, {"org_id": org_id, "scopes": scopes})
    return {row.scope: (row.version, _parse(row.id, row.document)) for row in rows}


async def load_book(
    session: AsyncSession,
    org_id: uuid.UUID,
    property_id: uuid.UUID | None,
    override: tuple[str, RuleSetDocument] | None = None,
) -> RuleBook:
    scopes = [ORG_SCOPE] + ([property_scope(property_id)] if property_id else [])
    if override is None:  # an intake batch reads each book once (services/api/txmemo.py)
        return await txmemo.remember_config(
            session, org_id, ("automation.book", org_id, property_id), lambda: _load_book(session, org_id, scopes, None)
        )
    return await _load_book(session, org_id, scopes, override)


async def _load_book(
    session: AsyncSession, org_id: uuid.UUID, scopes: list[str], override: tuple[str, RuleSetDocument] | None
) -> RuleBook:
    stored = await latest_documents(session, org_id, scopes)
    layers: list[tuple[str, int, RuleSetDocument]] = [(DEFAULT_SCOPE, DEFAULTS_VERSION, DEFAULTS)]
    for scope in scopes:
        if override is not None and override[0] == scope:
            layers.append((scope, 0, override[1]))
        elif scope in stored:
            layers.append((scope, stored[scope][0], stored[scope][1]))
    return merge(layers)


async def label_plan(session: AsyncSession, org_id: uuid.UUID, label_id: uuid.UUID) -> BoundRule | None:
    """A status label's action plan, as a rule triggered by entering that label."""
    scope = label_scope(label_id)
    stored = await latest_documents(session, org_id, [scope])
    if scope not in stored:
        return None
    version, document = stored[scope]
    if not document.rules:
        return None
    return BoundRule(document.rules[0], _stamp(document.rules[0].id, "status_label", version))


def validate_references(document: RuleSetDocument, book_without: RuleBook) -> None:
    """Cross-field checks pydantic cannot do: unique ids, sequences that exist."""
    errors: list[dict[str, str]] = []
    seen: set[str] = set()
    known_sequences = set(book_without.sequences) | set(document.sequences)
    for index, rule in enumerate(document.rules):
        if rule.id in seen:
            errors.append({"field": f"body.rules.{index}.id", "message": f"duplicate rule id {rule.id!r}"})
        seen.add(rule.id)
        for a_index, action in enumerate(rule.actions):
            _check_action(action, f"body.rules.{index}.actions.{a_index}", known_sequences, errors)
    for name, sequence in document.sequences.items():
        for s_index, step in enumerate(sequence.steps):
            for a_index, action in enumerate(step.actions):
                path = f"body.sequences.{name}.steps.{s_index}.actions.{a_index}"
                _check_action(action, path, known_sequences, errors)
    if errors:
        raise ValidationFailed("The rule set is not valid.", errors=errors)


def _check_action(action: Any, path: str, sequences: set[str], errors: list[dict[str, str]]) -> None:
    name = getattr(action, "sequence", None)
    if action.type in ("start_sequence", "stop_sequences") and name is not None and name not in sequences:
        errors.append({"field": f"{path}.sequence", "message": f"unknown sequence {name!r}"})
    if action.type == "move_status" and action.status == "lost" and action.lost_reason is None:
        errors.append({"field": f"{path}.lost_reason", "message": "moving to lost needs a reason"})


async def scope_for(session: AsyncSession, org_id: uuid.UUID, property_id: uuid.UUID | None) -> str:
    if property_id is None:
        return ORG_SCOPE
    found = await session.scalar(select(Property.id).where(Property.id == property_id, Property.org_id == org_id))
    if found is None:
        raise NotFound("Property not found.")
    return property_scope(property_id)


async def versions(session: AsyncSession, org_id: uuid.UUID, scope: str) -> list[AutomationRuleSet]:
    query = (
        select(AutomationRuleSet)
        .where(AutomationRuleSet.org_id == org_id, AutomationRuleSet.scope == scope)
        .order_by(AutomationRuleSet.version.desc())
        .limit(200)
    )
    return list((await session.scalars(query)).all())


async def save(
    session: AsyncSession,
    org_id: uuid.UUID,
    scope: str,
    document: RuleSetDocument,
    user_id: uuid.UUID | None,
    property_id: uuid.UUID | None = None,
) -> int:
    """A new version; concurrent saves of one scope serialize on an advisory lock, versions stay gapless."""
    key = f"automation-rules:{org_id}:{scope}"
    await session.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(key, 0))))
    current = await session.scalar(
        select(func.max(AutomationRuleSet.version)).where(
            AutomationRuleSet.org_id == org_id, AutomationRuleSet.scope == scope
        )
    )
    version = int(current or 0) + 1
    session.add(
        AutomationRuleSet(
            id=uuid.uuid4(),
            org_id=org_id,
            scope=scope,
            property_id=property_id,
            version=version,
            document=document.model_dump(mode="json", exclude_defaults=False),
            created_by_id=user_id,
        )
    )
    await session.flush()
    return version


async def save_label_plan(
    session: AsyncSession, org_id: uuid.UUID, label_id: uuid.UUID, plan: ActionPlan, user_id: uuid.UUID | None
) -> tuple[int, Rule]:
    label = await session.scalar(select(StatusLabel).where(StatusLabel.id == label_id, StatusLabel.org_id == org_id))
    if label is None:
        raise NotFound("Status label not found.")
    rule = Rule(
        id=f"label_{label_id.hex[:16]}",
        name=plan.name or f"Action plan: {label.label}",
        enabled=plan.enabled,
        trigger=StatusTrigger(type="status", status=label.canonical_status),
        conditions=plan.conditions,
        actions=plan.actions,
    )
    document = RuleSetDocument(rules=[rule])
    book = await load_book(session, org_id, None)
    errors: list[dict[str, str]] = []
    for index, action in enumerate(plan.actions):
        _check_action(action, f"body.actions.{index}", set(book.sequences), errors)
    if errors:
        raise ValidationFailed("The action plan is not valid.", errors=errors)
    version = await save(session, org_id, label_scope(label_id), document, user_id)
    return version, rule
