"""Rules as data: the wire shape of a rule (trigger, conditions, actions), sequences, and the explanations.

Validation happens here, at the edge: a bad rule is a 422 naming the field (`body.rules.2.trigger.event.event`).
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, field_validator

from shared.enums import Channel, ContactKind, EventType, LeadStatus, LostReason, NextActionType, TaskType
from shared.working_hours import WorkingHours

# triggers that are not timeline event types: derived by the engine
DERIVED_TRIGGERS = frozenset({"unqualified"})
TRIGGER_EVENTS = frozenset({*(e.value for e in EventType), *DERIVED_TRIGGERS})
_SLUG = re.compile(r"^[a-z0-9][a-z0-9_.:-]{0,31}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TimeAnchor(StrEnum):
    last_touch = "last_touch"
    status_entered = "status_entered"
    tour_start = "tour_start"
    application_started = "application_started"


class QualificationField(StrEnum):
    move_in_date = "move_in_date"
    bedrooms = "bedrooms"
    budget = "budget"
    pets = "pets"
    tour_time = "tour_time"


class EventTrigger(_Strict):
    type: Literal["event"]
    event: str = Field(description="a timeline event type (missed_call, inquiry, tour_booked…) or `unqualified`")

    @field_validator("event")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in TRIGGER_EVENTS:
            raise ValueError(f"unknown event {value!r}")
        return value


class StatusTrigger(_Strict):
    type: Literal["status"]
    status: LeadStatus = Field(description="fires when the lead enters this status")


class TimeTrigger(_Strict):
    type: Literal["time"]
    since: TimeAnchor
    after_minutes: StrictInt = Field(
        ge=-30 * 24 * 60, le=365 * 24 * 60, description="minutes after the anchor (negative: before a tour start)"
    )
    grace_minutes: StrictInt = Field(720, ge=1, le=30 * 24 * 60, description="later than this, the step is skipped")


Trigger = Annotated[EventTrigger | StatusTrigger | TimeTrigger, Field(discriminator="type")]


class Conditions(_Strict):
    """Every condition given must hold (lists: any of the values)."""

    source: list[str] | None = None
    property_id: list[uuid.UUID] | None = None
    channel: list[Channel] | None = None
    lead_kind: list[ContactKind] | None = None
    status: list[LeadStatus] | None = Field(None, description="the lead's status when the rule is evaluated")
    lost_reason: list[LostReason] | None = None
    consent: Literal["can_text", "cannot_text", "can_email"] | None = None
    working_hours: Literal["inside", "outside"] | None = Field(None, description="the organization's office hours")
    missing_fields: list[QualificationField] | None = Field(
        None, description="holds when at least one of these qualification fields is still unknown"
    )
    known_fields: list[QualificationField] | None = Field(None, description="holds when all of these are known")


class SetNextAction(_Strict):
    type: Literal["set_next_action"]
    action: NextActionType
    due_in_minutes: StrictInt = Field(0, ge=-30 * 24 * 60, le=365 * 24 * 60)
    due_relative_to: Literal["now", "tour_start"] = "now"


class CreateTask(_Strict):
    type: Literal["create_task"]
    task_type: TaskType
    title: str = Field(min_length=1, max_length=300)
    due_in_minutes: StrictInt = Field(0, ge=0, le=365 * 24 * 60)


class SendTemplate(_Strict):
    type: Literal["send_template"]
    template: str = Field(min_length=1, max_length=64)
    channel: Literal["best", "sms", "email"] = "best"
    kind: Literal["reply", "proactive"] = "reply"
    first_reply: StrictBool = Field(False, description="one automated first reply per renter per conversation window")


class StartSequence(_Strict):
    type: Literal["start_sequence"]
    sequence: str


class StopSequences(_Strict):
    type: Literal["stop_sequences"]
    reason: str = Field(min_length=1, max_length=64)
    sequence: str | None = None


class MoveStatus(_Strict):
    type: Literal["move_status"]
    status: LeadStatus
    lost_reason: LostReason | None = None


class Notify(_Strict):
    type: Literal["notify"]
    title: str = Field(min_length=1, max_length=200)
    body: str = Field("", max_length=2000)


class HumanReview(_Strict):
    type: Literal["human_review"]
    reason: str = Field(min_length=1, max_length=64)


class CancelTasks(_Strict):
    type: Literal["cancel_tasks"]
    reason: str = Field(min_length=1, max_length=64)
    rules: list[str] | None = Field(None, description="only tasks these rules created (default: every rule task)")


Action = Annotated[
    SetNextAction
    | CreateTask
    | SendTemplate
    | StartSequence
    | StopSequences
    | MoveStatus
    | Notify
    | HumanReview
    | CancelTasks,
    Field(discriminator="type"),
]


class Rule(_Strict):
    id: str = Field(description="stable slug; a rule with a default's id replaces that default")
    name: str = Field("", max_length=200)
    description: str = Field("", max_length=2000)
    enabled: StrictBool = True
    trigger: Trigger
    conditions: Conditions = Field(default_factory=Conditions)
    actions: list[Action] = Field(default_factory=list, max_length=20)

    @field_validator("id")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not _SLUG.match(value):
            raise ValueError("lowercase letters, digits and _.:- (up to 32)")
        return value


class SequenceStep(_Strict):
    after_minutes: StrictInt = Field(ge=0, le=365 * 24 * 60, description="minutes after the sequence started")
    grace_minutes: StrictInt = Field(720, ge=1, le=30 * 24 * 60)
    actions: list[Action] = Field(min_length=1, max_length=10)


class Sequence(_Strict):
    name: str = Field("", max_length=200)
    steps: list[SequenceStep] = Field(min_length=1, max_length=20)


class AutomationSettings(_Strict):
    duplicate_window_minutes: StrictInt = Field(30, ge=0, le=24 * 60)
    office_hours: WorkingHours | None = None


class RuleSetDocument(_Strict):
    """What a scope stores: rules by id (replacing lower scopes' rules of the same id), sequences, settings."""

    rules: list[Rule] = Field(default_factory=list, max_length=200)
    sequences: dict[str, Sequence] = Field(default_factory=dict)
    settings: AutomationSettings | None = None


class ActionPlan(_Strict):
    """A status label's action plan: a rule triggered by entering that label."""

    name: str = Field("", max_length=200)
    enabled: StrictBool = True
    conditions: Conditions = Field(default_factory=Conditions)
    actions: list[Action] = Field(min_length=1, max_length=20)


class EffectiveRule(BaseModel):
    rule: dict[str, Any]
    scope: str
    version: int


class RuleSetVersion(BaseModel):
    version: int
    created_at: datetime
    created_by_id: uuid.UUID | None


class RuleSetOut(BaseModel):
    scope: str = Field(description="`organization` or `property`")
    property_id: uuid.UUID | None
    version: StrictInt = Field(description="this scope's stored version (0: nothing stored, defaults apply)")
    document: RuleSetDocument
    effective: list[EffectiveRule]
    sequences: dict[str, Any]
    settings: AutomationSettings
    versions: list[RuleSetVersion]


class RuleTestRequest(_Strict):
    """A sample event: what would the rules do to this lead (or to a new lead like this)?"""

    event: str | None = Field(None, description="an event type, or `unqualified`")
    status: LeadStatus | None = Field(None, description="or: the status entered")
    lead_id: uuid.UUID | None = None
    property_id: uuid.UUID | None = None
    source: str | None = None
    channel: Channel | None = None
    lead_status: LeadStatus = LeadStatus.new
    lead_kind: ContactKind = ContactKind.tenant
    can_text: StrictBool = True
    document: RuleSetDocument | None = Field(None, description="try an unsaved rule set instead of the stored one")

    @field_validator("event")
    @classmethod
    def _known(cls, value: str | None) -> str | None:
        if value is not None and value not in TRIGGER_EVENTS:
            raise ValueError(f"unknown event {value!r}")
        return value


class Decision(BaseModel):
    action: str | None = Field(description="null: a rule's evaluation; else one decision (send_template, notify…)")
    rule: str | None
    version: int | None
    scope: str | None
    outcome: str
    reason: str | None
    actions: list[dict[str, Any]]


class RuleTestResult(BaseModel):
    trigger: str
    decisions: list[Decision]
    next_action: dict[str, Any] | None


class RuleRef(BaseModel):
    id: str
    name: str
    version: int
    scope: str


class NextActionOut(BaseModel):
    lead_id: uuid.UUID
    type: str | None
    due_at: datetime | None
    owner_id: uuid.UUID | None
    set_by: str | None = Field(description="`rule`, `user`, or null when the lead has no next action")
    rule: RuleRef | None
    trigger: str | None
    decided_at: datetime | None
    log_id: uuid.UUID | None
    pending_steps: list[dict[str, Any]]


class LogEntryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    occurred_at: datetime
    trigger: str
    rule_id: str | None
    rule_version: int | None
    rule_scope: str | None
    action: str | None
    outcome: str
    reason: str | None
    scheduled_action_id: uuid.UUID | None
    data: dict[str, Any]


class LogPage(BaseModel):
    items: list[LogEntryOut]
