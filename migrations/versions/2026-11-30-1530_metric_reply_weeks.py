# ruff: noqa: S608  (our own SQL text, no input)
"""metrics: reply histograms keep weeks only at level n

Revision ID: r19g
Revises: d18l
Create Date: 2026-11-30 15:30:00

Response time reads a partial month mostly inside its window as the month minus the days outside it, so the
source / property / owner levels of `metric_reply_rollups` no longer need weeks: a week of a property holds a
few replies a bucket, its rows ~70 % of its seven days' rows, and they were 29 % of the table (2.0 M of 6.8 M
rows at 1 M leads). Level n keeps its weeks (the week grouping reads them). The table is rewritten (kept rows
copied aside, truncated, refilled in key order) so the space returns to the operating system; it is locked
meanwhile (~1 min at 1 M leads).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "r19g"
down_revision: str | None = "d18l"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# frozen at this revision (services/api/metrics/replies.py: LEVEL_GRAINS)
DROPPED = ("s.w", "p.w", "o.w")
KEY = "org_id, view, day, tz, property_id, source, owner_id, kind, bucket"
MEASURES = ("automated", "human", "first", "automated_ms", "human_ms", "first_ms")


def upgrade() -> None:
    # kept rows copied aside, the table truncated (a new, empty file: the old one is freed at commit) and refilled
    # in key order with its primary key built once afterwards; DELETE would leave the space inside the table
    views = ", ".join(f"'{view}'" for view in DROPPED)
    columns = f"{KEY}, {', '.join(MEASURES)}"
    op.execute("LOCK TABLE metric_reply_rollups IN ACCESS EXCLUSIVE MODE")
    op.execute(
        f"CREATE TEMP TABLE metric_reply_kept ON COMMIT DROP AS SELECT {columns} FROM metric_reply_rollups "
        f"WHERE view NOT IN ({views})"
    )
    op.execute("TRUNCATE metric_reply_rollups")
    op.execute("ALTER TABLE metric_reply_rollups DROP CONSTRAINT pk_metric_reply_rollups")
    op.execute(f"INSERT INTO metric_reply_rollups ({columns}) SELECT {columns} FROM metric_reply_kept ORDER BY {KEY}")
    op.execute(f"ALTER TABLE metric_reply_rollups ADD CONSTRAINT pk_metric_reply_rollups PRIMARY KEY ({KEY})")
    op.execute("DROP TABLE metric_reply_kept")
    op.execute("ANALYZE metric_reply_rollups")


def downgrade() -> None:
    sums = ", ".join(f"sum({m})" for m in MEASURES)
    nonzero = " OR ".join(f"sum({m}) <> 0" for m in MEASURES)
    for view in DROPPED:
        level = view.split(".")[0]
        op.execute(
            f"INSERT INTO metric_reply_rollups ({KEY}, {', '.join(MEASURES)}) "
            f"SELECT org_id, '{view}', date_trunc('week', day::timestamp)::date, tz, property_id, source, owner_id, "
            f"kind, bucket, {sums} FROM metric_reply_rollups WHERE view = '{level}.d' "
            f"GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9 HAVING {nonzero}"
        )
    op.execute("ANALYZE metric_reply_rollups")
