"""application url: per property, with the organization's default in messaging settings

Revision ID: x11a
Revises: c16
Create Date: 2026-11-30 07:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "x11a"
down_revision: str | None = "c16"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("properties", sa.Column("application_url", sa.String(2000), nullable=True))
    op.add_column("messaging_settings", sa.Column("application_url", sa.String(2000), nullable=True))


def downgrade() -> None:
    op.drop_column("messaging_settings", "application_url")
    op.drop_column("properties", "application_url")
