"""organizations.config_version: a number that changes whenever the organization's configuration changes

Revision ID: q22c
Revises: p21s
Create Date: 2026-12-01 13:00:00

Issue #16. An intake batch reads the organization's configuration (assignment settings, the owner pool, the
timezone, the rule book, who watches new leads and how they want to hear, messaging settings, templates, the
blocklist): at moderate rates the drain finds two or three signals at a time, and those reads were a third of a
batch's statements. The API now keeps what it read across batches while this number stays the same
(services/api/configcache.py): one read of the number per batch instead of ~11 reads of the configuration.

PostgreSQL keeps it right, whoever writes: statement triggers on every configuration table (insert, update,
delete with transition tables; truncate) and a row trigger on organizations itself give the organization a new
number from one sequence, in the writer's transaction, so the change and the new number commit together. The
numbers come from a sequence, never reused: an organization deleted and created again with the same id cannot
meet a value kept under its old number. With session_replication_role = replica (bulk loads) triggers do not
fire: run `UPDATE organizations SET config_version = nextval('org_config_versions')` afterwards if an API runs
against that database already (bench/generate.py loads before any API starts).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "q22c"
down_revision: str | None = "p21s"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# what an intake batch reads of an organization, frozen here as a migration is (configcache.CONFIG_TABLES is the
# live list: tests/signals/test_config_cache.py fails when a table there lacks these triggers)
CONFIG_TABLES = (
    "users",
    "properties",
    "property_team_members",
    "assignment_settings",
    "automation_rule_sets",
    "message_templates",
    "messaging_settings",
    "notification_preferences",
    "blocklist_entries",
)

FUNCTIONS = [
    """
CREATE FUNCTION org_config_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE organizations SET config_version = nextval('org_config_versions')
    WHERE id IN (SELECT DISTINCT org_id FROM changed_rows);
    RETURN NULL;
END
$$""",
    """
CREATE FUNCTION org_config_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE organizations SET config_version = nextval('org_config_versions');
    RETURN NULL;
END
$$""",
    """
CREATE FUNCTION organizations_config_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- a configuration table's trigger sets a new number itself; any other change to the row takes one here
    IF NEW.config_version IS NOT DISTINCT FROM OLD.config_version THEN
        NEW.config_version := nextval('org_config_versions');
    END IF;
    RETURN NEW;
END
$$""",
]


def _triggers(table: str) -> list[str]:
    run = "FOR EACH STATEMENT EXECUTE FUNCTION org_config_changed()"
    return [
        f"CREATE TRIGGER {table}_config_insert AFTER INSERT ON {table} REFERENCING NEW TABLE AS changed_rows {run}",
        f"CREATE TRIGGER {table}_config_update AFTER UPDATE ON {table} REFERENCING NEW TABLE AS changed_rows {run}",
        f"CREATE TRIGGER {table}_config_delete AFTER DELETE ON {table} REFERENCING OLD TABLE AS changed_rows {run}",
        f"CREATE TRIGGER {table}_config_truncate AFTER TRUNCATE ON {table}"
        " FOR EACH STATEMENT EXECUTE FUNCTION org_config_truncated()",
    ]


def upgrade() -> None:
    op.execute("CREATE SEQUENCE org_config_versions")
    op.add_column(
        "organizations",
        sa.Column(
            "config_version",
            sa.BigInteger(),
            server_default=sa.text("nextval('org_config_versions'::regclass)"),
            nullable=False,
        ),
    )
    for statement in FUNCTIONS:
        op.execute(statement)
    op.execute(
        "CREATE TRIGGER organizations_config_version BEFORE UPDATE ON organizations"
        " FOR EACH ROW EXECUTE FUNCTION organizations_config_version()"
    )
    for table in CONFIG_TABLES:
        for statement in _triggers(table):
            op.execute(statement)


def downgrade() -> None:
    for table in CONFIG_TABLES:
        for event in ("insert", "update", "delete", "truncate"):
            op.execute(f"DROP TRIGGER {table}_config_{event} ON {table}")
    op.execute("DROP TRIGGER organizations_config_version ON organizations")
    for name in ("org_config_changed", "org_config_truncated", "organizations_config_version"):
        op.execute(f"DROP FUNCTION {name}()")
    op.drop_column("organizations", "config_version")
    op.execute("DROP SEQUENCE org_config_versions")
