"""ORM models, one module per table. Importing this package registers every table on Base.metadata."""

from shared.models.api_key import ApiKey
from shared.models.audit import AuditEntry
from shared.models.automation import AutomationLog, AutomationRuleSet, ScheduledAction
from shared.models.base import Base, scope_references_by_organization
from shared.models.contact import Contact, ContactIdentity
from shared.models.import_batch import ImportBatch, ImportRow
from shared.models.inbound_message import InboundMessage
from shared.models.integration import Integration
from shared.models.lead import Lead
from shared.models.lead_event import LeadEvent
from shared.models.messaging import (
    ConsentRecord,
    MessageTemplate,
    MessagingProvider,
    MessagingSettings,
    Notification,
    NotificationPreference,
    OutboundMessage,
)
from shared.models.metrics import (
    MetricCount,
    MetricCountDelta,
    MetricReplyRollup,
    MetricReplyTrailing,
    MetricRollup,
    SourceSpend,
)
from shared.models.organization import Organization
from shared.models.owners import AssignmentSetting, LeadCollaborator, LeadOffer, RoundRobinCursor, SlaTimer
from shared.models.property import Property
from shared.models.review import BlocklistEntry, ContactPairDecision, Merge, ReviewItem
from shared.models.signal_application import SignalApplication
from shared.models.status_label import StatusLabel
from shared.models.task import Task
from shared.models.team import PropertyTeamMember
from shared.models.tour import Tour, TourBlackout, TourChange, TourSettings
from shared.models.unit import FloorPlan, LeadReactivation, Unit
from shared.models.user import User
from shared.models.webhook import StreamEvent, StreamHead, WebhookDelivery, WebhookEndpoint

scope_references_by_organization(Base.metadata)  # once every model is loaded: references carry org_id

__all__ = [
    "ApiKey",
    "AssignmentSetting",
    "AuditEntry",
    "AutomationLog",
    "AutomationRuleSet",
    "Base",
    "BlocklistEntry",
    "ConsentRecord",
    "Contact",
    "ContactIdentity",
    "ContactPairDecision",
    "FloorPlan",
    "ImportBatch",
    "ImportRow",
    "InboundMessage",
    "Integration",
    "Lead",
    "LeadCollaborator",
    "LeadEvent",
    "LeadOffer",
    "LeadReactivation",
    "Merge",
    "MessageTemplate",
    "MessagingProvider",
    "MessagingSettings",
    "MetricCount",
    "MetricCountDelta",
    "MetricReplyRollup",
    "MetricReplyTrailing",
    "MetricRollup",
    "Notification",
    "NotificationPreference",
    "Organization",
    "OutboundMessage",
    "Property",
    "PropertyTeamMember",
    "ReviewItem",
    "RoundRobinCursor",
    "ScheduledAction",
    "SignalApplication",
    "SlaTimer",
    "SourceSpend",
    "StatusLabel",
    "StreamEvent",
    "StreamHead",
    "Task",
    "Tour",
    "TourBlackout",
    "TourChange",
    "TourSettings",
    "Unit",
    "User",
    "WebhookDelivery",
    "WebhookEndpoint",
]
