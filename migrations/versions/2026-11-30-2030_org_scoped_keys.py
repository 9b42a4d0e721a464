"""every primary key and every reference carries org_id (distributable by organization)

Revision ID: o20k
Revises: r19g
Create Date: 2026-11-30 20:30:00

Issue #16: the schema can be distributed by organization (Citus-style: org_id the distribution column) without
redesign. Unique keys already included org_id. Now every primary key does too ((id, org_id): id stays the
leading column, so a lookup by id alone keeps its index), and every reference to a per-organization table is
(x_id, org_id) → (id, org_id): a row can no longer point at another organization's row, a guarantee the API
checked only in code before. ON DELETE SET NULL keeps org_id: `SET NULL (x_id)` (PostgreSQL 15+).

Each table's primary key index is rebuilt and each reference validated, under ACCESS EXCLUSIVE locks: plan a
maintenance window on a large database (docs/architecture.md, "Beyond one PostgreSQL").
"""

from collections.abc import Sequence

from alembic import op

revision: str = "o20k"
down_revision: str | None = "r19g"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# frozen at this revision from the live catalog: (table, primary key columns before)
PRIMARY_KEYS = (
    ("api_keys", "id"),
    ("assignment_settings", "id"),
    ("audit_entries", "id"),
    ("automation_log", "id"),
    ("automation_rule_sets", "id"),
    ("blocklist_entries", "id"),
    ("consent_records", "id"),
    ("contact_identities", "id"),
    ("contact_pair_decisions", "id"),
    ("contacts", "id"),
    ("floor_plans", "id"),
    ("import_batches", "id"),
    ("import_rows", "id"),
    ("inbound_messages", "id"),
    ("lead_collaborators", "id"),
    ("lead_events", "id"),
    ("lead_offers", "id"),
    ("lead_reactivations", "id"),
    ("leads", "id"),
    ("merges", "id"),
    ("message_templates", "id"),
    ("metric_count_deltas", "id"),
    ("notification_preferences", "user_id, kind"),
    ("notifications", "id"),
    ("outbound_messages", "id"),
    ("properties", "id"),
    ("property_team_members", "id"),
    ("review_items", "id"),
    ("round_robin_cursors", "id"),
    ("scheduled_actions", "id"),
    ("signal_applications", "inbound_id"),
    ("sla_timers", "id"),
    ("source_spend", "id"),
    ("status_labels", "id"),
    ("stream_events", "id"),
    ("tasks", "id"),
    ("tour_blackouts", "id"),
    ("tour_changes", "id"),
    ("tour_settings", "id"),
    ("tours", "id"),
    ("units", "id"),
    ("users", "id"),
    ("webhook_deliveries", "id"),
    ("webhook_endpoints", "id"),
)
# (table, constraint, column, referenced table, ON DELETE, deferrable INITIALLY IMMEDIATE)
REFERENCES = (
    ("api_keys", "fk_api_keys_user_id_users", "user_id", "users", "SET NULL", False),
    ("assignment_settings", "fk_assignment_settings_fixed_user_id_users", "fixed_user_id", "users", "SET NULL", False),
    (
        "assignment_settings",
        "fk_assignment_settings_property_id_properties",
        "property_id",
        "properties",
        "CASCADE",
        False,
    ),
    ("automation_log", "fk_automation_log_contact_id_contacts", "contact_id", "contacts", "CASCADE", False),
    ("automation_log", "fk_automation_log_lead_id_leads", "lead_id", "leads", "CASCADE", True),
    (
        "automation_rule_sets",
        "fk_automation_rule_sets_property_id_properties",
        "property_id",
        "properties",
        "CASCADE",
        False,
    ),
    ("consent_records", "fk_consent_records_contact_id_contacts", "contact_id", "contacts", "CASCADE", False),
    ("contact_identities", "fk_contact_identities_contact_id_contacts", "contact_id", "contacts", "CASCADE", True),
    (
        "contact_pair_decisions",
        "fk_contact_pair_decisions_contact_high_id_contacts",
        "contact_high_id",
        "contacts",
        "CASCADE",
        False,
    ),
    (
        "contact_pair_decisions",
        "fk_contact_pair_decisions_contact_low_id_contacts",
        "contact_low_id",
        "contacts",
        "CASCADE",
        False,
    ),
    ("contacts", "fk_contacts_merged_into_id_contacts", "merged_into_id", "contacts", "SET NULL", False),
    ("floor_plans", "fk_floor_plans_property_id_properties", "property_id", "properties", "CASCADE", False),
    ("import_rows", "fk_import_rows_batch_id_import_batches", "batch_id", "import_batches", "CASCADE", False),
    ("inbound_messages", "fk_inbound_messages_contact_id_contacts", "contact_id", "contacts", "SET NULL", False),
    ("inbound_messages", "fk_inbound_messages_lead_id_leads", "lead_id", "leads", "SET NULL", True),
    ("inbound_messages", "fk_inbound_messages_property_id_properties", "property_id", "properties", "SET NULL", False),
    ("lead_collaborators", "fk_lead_collaborators_lead_id_leads", "lead_id", "leads", "CASCADE", True),
    ("lead_collaborators", "fk_lead_collaborators_user_id_users", "user_id", "users", "CASCADE", False),
    ("lead_events", "fk_lead_events_contact_id_contacts", "contact_id", "contacts", "CASCADE", False),
    ("lead_events", "fk_lead_events_lead_id_leads", "lead_id", "leads", "CASCADE", True),
    ("lead_offers", "fk_lead_offers_lead_id_leads", "lead_id", "leads", "CASCADE", True),
    ("lead_offers", "fk_lead_offers_user_id_users", "user_id", "users", "CASCADE", False),
    ("lead_reactivations", "fk_lead_reactivations_contact_id_contacts", "contact_id", "contacts", "CASCADE", False),
    ("lead_reactivations", "fk_lead_reactivations_lead_id_leads", "lead_id", "leads", "CASCADE", True),
    ("lead_reactivations", "fk_lead_reactivations_unit_id_units", "unit_id", "units", "CASCADE", False),
    ("leads", "fk_leads_contact_id_contacts", "contact_id", "contacts", "CASCADE", False),
    ("leads", "fk_leads_next_action_owner_id_users", "next_action_owner_id", "users", "SET NULL", False),
    ("leads", "fk_leads_owner_id_users", "owner_id", "users", "SET NULL", False),
    ("leads", "fk_leads_property_id_properties", "property_id", "properties", "SET NULL", False),
    ("leads", "fk_leads_status_label_id_status_labels", "status_label_id", "status_labels", "SET NULL", False),
    ("merges", "fk_merges_merged_id_contacts", "merged_id", "contacts", "CASCADE", False),
    ("merges", "fk_merges_survivor_id_contacts", "survivor_id", "contacts", "CASCADE", False),
    ("message_templates", "fk_message_templates_property_id_properties", "property_id", "properties", "CASCADE", False),
    ("notification_preferences", "fk_notification_preferences_user_id_users", "user_id", "users", "CASCADE", False),
    ("notifications", "fk_notifications_lead_id_leads", "lead_id", "leads", "CASCADE", True),
    ("notifications", "fk_notifications_user_id_users", "user_id", "users", "CASCADE", False),
    ("outbound_messages", "fk_outbound_messages_contact_id_contacts", "contact_id", "contacts", "CASCADE", False),
    ("outbound_messages", "fk_outbound_messages_created_by_id_users", "created_by_id", "users", "SET NULL", False),
    ("outbound_messages", "fk_outbound_messages_lead_id_leads", "lead_id", "leads", "CASCADE", True),
    ("outbound_messages", "fk_outbound_messages_user_id_users", "user_id", "users", "CASCADE", False),
    (
        "property_team_members",
        "fk_property_team_members_property_id_properties",
        "property_id",
        "properties",
        "CASCADE",
        False,
    ),
    ("property_team_members", "fk_property_team_members_user_id_users", "user_id", "users", "CASCADE", False),
    ("review_items", "fk_review_items_contact_id_contacts", "contact_id", "contacts", "CASCADE", False),
    ("review_items", "fk_review_items_lead_id_leads", "lead_id", "leads", "CASCADE", True),
    ("round_robin_cursors", "fk_round_robin_cursors_user_id_users", "user_id", "users", "CASCADE", False),
    ("scheduled_actions", "fk_scheduled_actions_lead_id_leads", "lead_id", "leads", "CASCADE", True),
    ("signal_applications", "fk_signal_applications_contact_id_contacts", "contact_id", "contacts", "CASCADE", False),
    ("signal_applications", "fk_signal_applications_lead_id_leads", "lead_id", "leads", "CASCADE", True),
    ("sla_timers", "fk_sla_timers_lead_id_leads", "lead_id", "leads", "CASCADE", True),
    ("tasks", "fk_tasks_lead_id_leads", "lead_id", "leads", "CASCADE", True),
    ("tasks", "fk_tasks_owner_id_users", "owner_id", "users", "SET NULL", False),
    ("tour_blackouts", "fk_tour_blackouts_property_id_properties", "property_id", "properties", "CASCADE", False),
    ("tour_changes", "fk_tour_changes_actor_id_users", "actor_id", "users", "SET NULL", False),
    ("tour_changes", "fk_tour_changes_from_agent_id_users", "from_agent_id", "users", "SET NULL", False),
    ("tour_changes", "fk_tour_changes_to_agent_id_users", "to_agent_id", "users", "SET NULL", False),
    ("tour_changes", "fk_tour_changes_tour_id_tours", "tour_id", "tours", "CASCADE", False),
    ("tour_settings", "fk_tour_settings_property_id_properties", "property_id", "properties", "CASCADE", False),
    ("tours", "fk_tours_agent_id_users", "agent_id", "users", "SET NULL", False),
    ("tours", "fk_tours_lead_id_leads", "lead_id", "leads", "CASCADE", True),
    ("tours", "fk_tours_property_id_properties", "property_id", "properties", "SET NULL", False),
    ("tours", "fk_tours_unit_id_units", "unit_id", "units", "SET NULL", False),
    ("units", "fk_units_floor_plan_id_floor_plans", "floor_plan_id", "floor_plans", "RESTRICT", False),
    ("units", "fk_units_property_id_properties", "property_id", "properties", "CASCADE", False),
    (
        "webhook_deliveries",
        "fk_webhook_deliveries_endpoint_id_webhook_endpoints",
        "endpoint_id",
        "webhook_endpoints",
        "CASCADE",
        False,
    ),
    (
        "webhook_deliveries",
        "fk_webhook_deliveries_event_id_stream_events",
        "event_id",
        "stream_events",
        "CASCADE",
        False,
    ),
)


def _reference(table: str, name: str, column: str, target: str, on_delete: str, deferrable: bool, scoped: bool) -> str:
    action = f"SET NULL ({column})" if on_delete == "SET NULL" and scoped else on_delete
    columns, targets = (f"{column}, org_id", "id, org_id") if scoped else (column, "id")
    defer = " DEFERRABLE INITIALLY IMMEDIATE" if deferrable else ""
    return (
        f"ALTER TABLE {table} ADD CONSTRAINT {name} FOREIGN KEY ({columns}) REFERENCES {target} ({targets}) "
        f"ON DELETE {action}{defer}"
    )


def _relayout(scoped: bool) -> None:
    for table, name, *_ in REFERENCES:
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
    for table, columns in PRIMARY_KEYS:
        keys = (f"org_id, {columns}" if columns == "user_id, kind" else f"{columns}, org_id") if scoped else columns
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT pk_{table}, ADD CONSTRAINT pk_{table} PRIMARY KEY ({keys})")
    for reference in REFERENCES:
        op.execute(_reference(*reference, scoped=scoped))


def upgrade() -> None:
    _relayout(scoped=True)


def downgrade() -> None:
    _relayout(scoped=False)
