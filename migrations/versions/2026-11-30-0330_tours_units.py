"""tours and units: floor plans, units, reactivations, tour history/settings/blackouts, no double booking

Revision ID: t12
Revises: m10
Create Date: 2026-11-30 03:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "t12"
down_revision: str | None = "m10"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UUID = postgresql.UUID(as_uuid=True)
TS = sa.DateTime(timezone=True)
BUSY_RANGE = "tstzrange(starts_at, busy_until, '[)')"


def _org() -> sa.Column:
    return sa.Column("org_id", UUID, sa.ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False)


def _stamps() -> list[sa.Column]:
    return [
        sa.Column("created_at", TS, server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", TS, server_default=sa.func.now(), nullable=False),
    ]


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
    op.add_column("leads", sa.Column("match_portfolio", sa.Boolean(), server_default="false", nullable=False))
    op.add_column("leads", sa.Column("unit_digest_opt_in", sa.Boolean(), server_default="false", nullable=False))

    op.create_table(
        "floor_plans",
        sa.Column("id", UUID, primary_key=True),
        _org(),
        sa.Column("property_id", UUID, sa.ForeignKey("properties.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("bedrooms", sa.Integer(), nullable=False),
        sa.Column("bathrooms", sa.Numeric(3, 1), nullable=True),
        sa.Column("sqft", sa.Integer(), nullable=True),
        sa.Column("rent_min", sa.Integer(), nullable=True),
        sa.Column("rent_max", sa.Integer(), nullable=True),
        sa.Column("pet_policy", sa.String(16), server_default="case_by_case", nullable=False),
        sa.Column("pet_notes", sa.Text(), nullable=True),
        *_stamps(),
        sa.UniqueConstraint("org_id", "property_id", "name"),
        sa.CheckConstraint("bedrooms >= 0", name="ck_floor_plans_bedrooms_nonnegative"),
        sa.CheckConstraint("rent_min IS NULL OR rent_min >= 0", name="ck_floor_plans_rent_min_nonnegative"),
        sa.CheckConstraint(
            "rent_max IS NULL OR rent_min IS NULL OR rent_max >= rent_min", name="ck_floor_plans_rent_range_ordered"
        ),
    )
    op.create_index("ix_floor_plans_org_id", "floor_plans", ["org_id"])
    op.create_index("ix_floor_plans_property_id", "floor_plans", ["property_id"])

    op.create_table(
        "units",
        sa.Column("id", UUID, primary_key=True),
        _org(),
        sa.Column("property_id", UUID, sa.ForeignKey("properties.id", ondelete="CASCADE"), nullable=False),
        sa.Column("floor_plan_id", UUID, sa.ForeignKey("floor_plans.id", ondelete="RESTRICT"), nullable=False),
        sa.Column("number", sa.String(32), nullable=False),
        sa.Column("rent", sa.Integer(), nullable=True),
        sa.Column("available_on", sa.Date(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("available_since", TS, nullable=True),
        *_stamps(),
        sa.UniqueConstraint("org_id", "property_id", "number"),
        sa.CheckConstraint("rent IS NULL OR rent >= 0", name="ck_units_rent_nonnegative"),
        sa.CheckConstraint("status IN ('available', 'on_notice', 'leased', 'down')", name="ck_units_status_known"),
    )
    op.create_index("ix_units_org_id", "units", ["org_id"])
    op.create_index("ix_units_property_id_status", "units", ["property_id", "status"])
    op.create_index("ix_units_floor_plan_id", "units", ["floor_plan_id"])
    op.create_index("ix_units_org_id_available_since", "units", ["org_id", "available_since"])

    op.create_table(
        "lead_reactivations",
        sa.Column("id", UUID, primary_key=True),
        _org(),
        sa.Column("lead_id", UUID, sa.ForeignKey("leads.id", ondelete="CASCADE"), nullable=False),
        sa.Column("contact_id", UUID, sa.ForeignKey("contacts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("unit_id", UUID, sa.ForeignKey("units.id", ondelete="CASCADE"), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("org_id", "contact_id", "unit_id"),
    )
    op.create_index("ix_lead_reactivations_org_id", "lead_reactivations", ["org_id"])
    op.create_index("ix_lead_reactivations_lead_id", "lead_reactivations", ["lead_id"])
    op.create_index("ix_lead_reactivations_unit_id", "lead_reactivations", ["unit_id"])

    # tours: an end, a busy-until (end + buffer), a unit, cancel details, an iCalendar sequence
    op.add_column("tours", sa.Column("unit_id", UUID, sa.ForeignKey("units.id", ondelete="SET NULL"), nullable=True))
    op.add_column("tours", sa.Column("ends_at", TS, nullable=True))
    op.add_column("tours", sa.Column("busy_until", TS, nullable=True))
    op.add_column("tours", sa.Column("canceled_at", TS, nullable=True))
    op.add_column("tours", sa.Column("cancel_reason", sa.Text(), nullable=True))
    op.add_column("tours", sa.Column("sequence", sa.Integer(), server_default="0", nullable=False))
    op.execute("UPDATE tours SET ends_at = starts_at + interval '30 minutes', busy_until = starts_at + interval '30 minutes'")
    # tours booked before this migration could overlap: keep the earliest, mark the others canceled
    op.execute(
        """
        UPDATE tours SET status = 'canceled', cancel_reason = 'double booking found by the t12 migration'
        WHERE id IN (
            SELECT later.id FROM tours later JOIN tours earlier
              ON later.agent_id = earlier.agent_id AND later.id <> earlier.id
             AND later.status = 'scheduled' AND earlier.status = 'scheduled'
             AND tstzrange(later.starts_at, later.busy_until, '[)') && tstzrange(earlier.starts_at, earlier.busy_until, '[)')
             AND (earlier.starts_at, earlier.id) < (later.starts_at, later.id)
        )
        """
    )
    op.alter_column("tours", "ends_at", nullable=False)
    op.alter_column("tours", "busy_until", nullable=False)
    op.create_check_constraint("ck_tours_times_ordered", "tours", "ends_at > starts_at AND busy_until >= ends_at")
    op.create_index("ix_tours_agent_id_starts_at", "tours", ["agent_id", "starts_at"])
    op.execute(
        f"ALTER TABLE tours ADD CONSTRAINT ex_tours_agent_busy EXCLUDE USING gist "
        f"(agent_id WITH =, {BUSY_RANGE} WITH &&) WHERE (status = 'scheduled' AND agent_id IS NOT NULL)"
    )
    op.execute(
        f"ALTER TABLE tours ADD CONSTRAINT ex_tours_self_guided_busy EXCLUDE USING gist "
        f"(property_id WITH =, {BUSY_RANGE} WITH &&) "
        f"WHERE (status = 'scheduled' AND tour_type = 'self_guided' AND agent_id IS NULL)"
    )

    op.create_table(
        "tour_changes",
        sa.Column("id", UUID, primary_key=True),
        _org(),
        sa.Column("tour_id", UUID, sa.ForeignKey("tours.id", ondelete="CASCADE"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("from_starts_at", TS, nullable=True),
        sa.Column("to_starts_at", TS, nullable=True),
        sa.Column("from_agent_id", UUID, sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
        sa.Column("to_agent_id", UUID, sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
        sa.Column("from_status", sa.String(16), nullable=True),
        sa.Column("to_status", sa.String(16), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("actor_id", UUID, sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
        sa.Column("occurred_at", TS, nullable=False),
    )
    op.create_index("ix_tour_changes_org_id", "tour_changes", ["org_id"])
    op.create_index("ix_tour_changes_tour_id", "tour_changes", ["tour_id"])

    op.create_table(
        "tour_settings",
        sa.Column("id", UUID, primary_key=True),
        _org(),
        sa.Column("property_id", UUID, sa.ForeignKey("properties.id", ondelete="CASCADE"), nullable=False),
        sa.Column("length_minutes", sa.Integer(), nullable=False),
        sa.Column("buffer_minutes", sa.Integer(), nullable=False),
        sa.Column("interval_minutes", sa.Integer(), nullable=False),
        sa.Column("min_notice_minutes", sa.Integer(), nullable=False),
        sa.Column("tour_types", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("default_hours", postgresql.JSONB(), nullable=True),
        sa.Column("self_guided_hours", postgresql.JSONB(), nullable=True),
        *_stamps(),
        sa.UniqueConstraint("org_id", "property_id"),
        sa.CheckConstraint("length_minutes BETWEEN 5 AND 480", name="ck_tour_settings_length_range"),
        sa.CheckConstraint("buffer_minutes BETWEEN 0 AND 240", name="ck_tour_settings_buffer_range"),
        sa.CheckConstraint("interval_minutes BETWEEN 5 AND 240", name="ck_tour_settings_interval_range"),
    )
    op.create_index("ix_tour_settings_org_id", "tour_settings", ["org_id"])

    op.create_table(
        "tour_blackouts",
        sa.Column("id", UUID, primary_key=True),
        _org(),
        sa.Column("property_id", UUID, sa.ForeignKey("properties.id", ondelete="CASCADE"), nullable=False),
        sa.Column("starts_at", TS, nullable=False),
        sa.Column("ends_at", TS, nullable=False),
        sa.Column("reason", sa.String(200), nullable=True),
        *_stamps(),
        sa.CheckConstraint("ends_at > starts_at", name="ck_tour_blackouts_ordered"),
    )
    op.create_index("ix_tour_blackouts_org_id", "tour_blackouts", ["org_id"])
    op.create_index("ix_tour_blackouts_property_id_starts_at", "tour_blackouts", ["property_id", "starts_at"])


def downgrade() -> None:
    op.drop_table("tour_blackouts")
    op.drop_table("tour_settings")
    op.drop_table("tour_changes")
    op.execute("ALTER TABLE tours DROP CONSTRAINT ex_tours_self_guided_busy")
    op.execute("ALTER TABLE tours DROP CONSTRAINT ex_tours_agent_busy")
    op.drop_index("ix_tours_agent_id_starts_at", table_name="tours")
    op.drop_constraint("ck_tours_times_ordered", "tours", type_="check")
    for column in ("sequence", "cancel_reason", "canceled_at", "busy_until", "ends_at", "unit_id"):
        op.drop_column("tours", column)
    op.drop_table("lead_reactivations")
    op.drop_table("units")
    op.drop_table("floor_plans")
    op.drop_column("leads", "unit_digest_opt_in")
    op.drop_column("leads", "match_portfolio")
    # btree_gist stays installed: other schemas may use it, and it holds no data
