"""Metrics rollups: exact counts kept by PostgreSQL triggers in the writer's own transaction.

Every write to `leads` / `lead_events` that changes what a metric counts appends signed rows to
`metric_count_deltas` (insert-only: no hot row, no lock order, no deadlock between writers). The
`metrics_compact` cron job folds deltas into `metric_counts` and derives the coarse `metric_rollups`; readers
sum rollups and deltas, so an answer is exact at every instant. `guestcard metrics rebuild` recomputes them
from leads and events. Definitions: docs/metrics.md.
"""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import BigInteger, Date, ForeignKey, Identity, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, IdMixin, OrgMixin, TimestampMixin

# Key columns are NOT NULL with sentinels (no property / no owner / no source), so the key is a plain
# primary key and every reader groups the same way.
NO_ID = uuid.UUID(int=0)


MEASURES = ("leads", "contacted", "qualified", "tour_requested", "tour_booked", "toured", "applied", "leased", "lost",
            "nurture", "reopened", "no_owner", "open_leads", "open_no_owner", "open_no_action", "open_due")  # fmt: skip


class FunnelCounters:
    """The funnel's counters, as folded rows hold them (metric_counts and metric_rollups)."""

    leads: Mapped[int] = mapped_column(BigInteger)
    contacted: Mapped[int] = mapped_column(BigInteger)
    qualified: Mapped[int] = mapped_column(BigInteger)
    tour_requested: Mapped[int] = mapped_column(BigInteger)
    tour_booked: Mapped[int] = mapped_column(BigInteger)
    toured: Mapped[int] = mapped_column(BigInteger)
    applied: Mapped[int] = mapped_column(BigInteger)
    leased: Mapped[int] = mapped_column(BigInteger)
    lost: Mapped[int] = mapped_column(BigInteger)
    nurture: Mapped[int] = mapped_column(BigInteger)
    reopened: Mapped[int] = mapped_column(BigInteger)
    no_owner: Mapped[int] = mapped_column(BigInteger)
    # health (migration m18r): open leads, and of those without owner, without next action, with a due date
    open_leads: Mapped[int] = mapped_column(BigInteger, server_default="0")
    open_no_owner: Mapped[int] = mapped_column(BigInteger, server_default="0")
    open_no_action: Mapped[int] = mapped_column(BigInteger, server_default="0")
    open_due: Mapped[int] = mapped_column(BigInteger, server_default="0")


class MetricCount(FunnelCounters, Base):
    """Compacted rollup: one row per key, a count per measure.

    views: cohort and activity by local day, keyed by property, source, owner and kind (migration m17c; the
    coarser levels are in metric_rollups).
    day: local to the lead's property timezone (the organization's when none); owner_id: NO_ID for none.
    """

    __tablename__ = "metric_counts"

    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True)
    view: Mapped[str] = mapped_column(String(8), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    property_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)


class MetricCountDelta(Base):
    """Signed changes not yet compacted (written by triggers, drained by `metrics_compact`)."""

    __tablename__ = "metric_count_deltas"
    __table_args__ = (Index("ix_metric_count_deltas_org_id_view_day", "org_id", "view", "day"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True)
    view: Mapped[str] = mapped_column(String(8))  # base views only: cohort, activity (migration m17c)
    day: Mapped[date] = mapped_column(Date)
    tz: Mapped[str] = mapped_column(String(64), server_default="UTC")  # the timezone `day` is local to
    property_id: Mapped[uuid.UUID]
    source: Mapped[str] = mapped_column(String(64))
    latest_source: Mapped[str] = mapped_column(String(64), server_default="")  # cohort rows: the last touch
    owner_id: Mapped[uuid.UUID]
    kind: Mapped[str] = mapped_column(String(16))
    # cohort rows: the lead's first automated / human / any reply, as a bucket (metric_reply_bucket; NULL: none)
    # and signed milliseconds after creation (migration m18r)
    reply_a: Mapped[int | None] = mapped_column(Integer)
    reply_h: Mapped[int | None] = mapped_column(Integer)
    reply_f: Mapped[int | None] = mapped_column(Integer)
    reply_a_ms: Mapped[int] = mapped_column(BigInteger, server_default="0")
    reply_h_ms: Mapped[int] = mapped_column(BigInteger, server_default="0")
    reply_f_ms: Mapped[int] = mapped_column(BigInteger, server_default="0")
    leads: Mapped[int] = mapped_column(Integer)
    contacted: Mapped[int] = mapped_column(Integer)
    qualified: Mapped[int] = mapped_column(Integer)
    tour_requested: Mapped[int] = mapped_column(Integer)
    tour_booked: Mapped[int] = mapped_column(Integer)
    toured: Mapped[int] = mapped_column(Integer)
    applied: Mapped[int] = mapped_column(Integer)
    leased: Mapped[int] = mapped_column(Integer)
    lost: Mapped[int] = mapped_column(Integer)
    nurture: Mapped[int] = mapped_column(Integer)
    reopened: Mapped[int] = mapped_column(Integer)
    no_owner: Mapped[int] = mapped_column(Integer)
    open_leads: Mapped[int] = mapped_column(Integer, server_default="0")
    open_no_owner: Mapped[int] = mapped_column(Integer, server_default="0")
    open_no_action: Mapped[int] = mapped_column(Integer, server_default="0")
    open_due: Mapped[int] = mapped_column(Integer, server_default="0")


class MetricRollup(FunnelCounters, Base):
    """Coarse rollup levels, derived by the `metrics_compact` fold from the base deltas (never by a trigger).

    view = `<level>.<grain>`: level s, p, o, ps, po, so (cohort), ls, lps (last touch: `source` holds the latest
    source), as, ap, ao, aps, apo, aso (activity), keeping property (p), source (s / l) and owner (o); grain d
    (local day), w (local ISO week, `day` its Monday), m (local month, `day` its first). `tz` is the timezone
    those days are local to, so a level without property is still cut at each timezone's whole days.
    """

    __tablename__ = "metric_rollups"

    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True)
    view: Mapped[str] = mapped_column(String(8), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    tz: Mapped[str] = mapped_column(String(64), primary_key=True)
    property_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)


class MetricReplyRollup(Base):
    """Reply-time histograms (migration m18r), derived by the fold from the cohort base deltas.

    view = `<level>.<grain>`: level n (none), s (source), p (property), o (owner); grains as in metric_rollups.
    Per bucket (services/api/metrics/replies.py; -1: no such reply yet) how many leads' first automated / human /
    any reply fell in it, and the sum of those delays in milliseconds.
    """

    __tablename__ = "metric_reply_rollups"

    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True)
    view: Mapped[str] = mapped_column(String(8), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    tz: Mapped[str] = mapped_column(String(64), primary_key=True)
    property_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    bucket: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    automated: Mapped[int] = mapped_column(BigInteger)
    human: Mapped[int] = mapped_column(BigInteger)
    first: Mapped[int] = mapped_column(BigInteger)
    automated_ms: Mapped[int] = mapped_column(BigInteger)
    human_ms: Mapped[int] = mapped_column(BigInteger)
    first_ms: Mapped[int] = mapped_column(BigInteger)


class MetricReplyTrailing(Base):
    """The day the reply histograms' trailing windows end on (migration y23t), per organization and timezone.

    `day` E (a local date): metric_reply_rollups holds views `<level>.t30` and `<level>.t365` (levels s, p, o;
    their rows at day 0001-01-01), the sums of that level over the local days E-29 .. E and E-364 .. E. NULL: not
    built yet (a timezone the fold met for the first time). The fold adds every delta of those days to them;
    `metrics_compact` moves E to today (rollups.roll_trailing). The default 30-day window and a year ending now
    read one row per group and bucket instead of months and days.
    """

    __tablename__ = "metric_reply_trailing"

    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True)
    tz: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[date | None] = mapped_column(Date)


class SourceSpend(IdMixin, OrgMixin, TimestampMixin, Base):
    """Marketing spend per source and calendar month (PUT /v1/sources/{source}/spend)."""

    __tablename__ = "source_spend"
    __table_args__ = (Index("uq_source_spend_org_id_source_month", "org_id", "source", "month", unique=True),)

    source: Mapped[str] = mapped_column(String(64))
    month: Mapped[date] = mapped_column(Date)  # first day of the month
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3), default="USD", server_default="USD")
