# ruff: noqa: S608  (our own SQL text, no input)
"""metrics: reply histograms keep the last 30 and 365 days per organization and timezone

Revision ID: y23t
Revises: q22c
Create Date: 2026-12-01 16:00:00

Issue #13. Response time grouped by property over a year read twelve month rows per property and bucket: a
property's month already holds ~60 % of its year's non-empty buckets (~167 of ~277 at 1 M leads), so a year
cost ~250 k rows (~180 ms) where its answer has ~34 k cells; a 30-day window from mid-month read ~30 days of
day rows. Levels s, p and o now also keep views `<level>.t30` and `<level>.t365` (rows at day 0001-01-01): the
sums of that level over the 30 and 365 local days ending on the one day E per organization and timezone that
`metric_reply_trailing` names (today: the fold adds every delta of those days, the `metrics_compact` cron moves
E when a local day begins, by the days gained and lost). A window whose whole days end today reads them.

This migration creates the markers at today's local date of every organization and timezone that has reply
rollups, and builds the windows from the day and month rows (~1 s at 1 M leads).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "y23t"
down_revision: str | None = "q22c"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# frozen at this revision (services/api/metrics/replies.py: TRAILING_LEVELS, TRAILING_SPANS, trailing_insert)
MEASURES = ("automated", "human", "first", "automated_ms", "human_ms", "first_ms")
KEY = "org_id, view, day, tz, property_id, source, owner_id, kind, bucket"
VIEWS = "'s.t30', 's.t365', 'p.t30', 'p.t365', 'o.t30', 'o.t365'"


def upgrade() -> None:
    op.create_table(
        "metric_reply_trailing",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("tz", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name="fk_metric_reply_trailing_org_id_organizations", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("org_id", "tz", name="pk_metric_reply_trailing"),
    )
    op.execute(
        "INSERT INTO metric_reply_trailing (org_id, tz, day) SELECT DISTINCT org_id, tz, "
        "(now() AT TIME ZONE tz)::date FROM metric_reply_rollups WHERE view = 'n.m'"
    )
    sums = ", ".join(f"sum(r.{m})" for m in MEASURES)
    nonzero = " OR ".join(f"sum(r.{m}) <> 0" for m in MEASURES)
    # per window its days [a, b): whole months [ma, mb) from month rows, the days before and after from day rows
    op.execute(
        f"""
INSERT INTO metric_reply_rollups ({KEY}, {", ".join(MEASURES)})
WITH spans AS (
  SELECT y.org_id, y.tz, y.day, w.span, a, b,
         (date_trunc('month', (a - 1)::timestamp) + interval '1 month')::date AS ma,
         date_trunc('month', b::timestamp)::date AS mb
  FROM metric_reply_trailing y CROSS JOIN (VALUES (30), (365)) w(span)
  CROSS JOIN LATERAL (SELECT y.day - w.span + 1 AS a, y.day + 1 AS b) ab
), parts AS (
  SELECT s.org_id, s.tz, s.day AS at, s.span, l.level, g.grain, g.lo, g.hi FROM spans s
  CROSS JOIN (VALUES ('s'), ('p'), ('o')) l(level)
  CROSS JOIN LATERAL (VALUES ('d', s.a, LEAST(s.ma, s.b)), ('m', s.ma, s.mb), ('d', GREATEST(s.mb, s.ma), s.b))
    g(grain, lo, hi)
  WHERE g.lo < g.hi
)
SELECT r.org_id, p.level || '.t' || p.span, DATE '0001-01-01', r.tz, r.property_id, r.source, r.owner_id, r.kind,
  r.bucket, {sums}
FROM parts p JOIN metric_reply_rollups r ON r.org_id = p.org_id AND r.view = p.level || '.' || p.grain
  AND r.tz = p.tz AND r.day >= p.lo AND r.day < p.hi
GROUP BY r.org_id, p.level, p.span, r.tz, r.property_id, r.source, r.owner_id, r.kind, r.bucket
HAVING {nonzero}
"""
    )
    op.execute("ANALYZE metric_reply_trailing")


def downgrade() -> None:
    op.execute(f"DELETE FROM metric_reply_rollups WHERE view IN ({VIEWS})")
    op.drop_table("metric_reply_trailing")
