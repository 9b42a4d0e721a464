"""`guestcard metrics rebuild` and `guestcard dashboard-link` (registered in services/cli.py)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from shared.config import Settings, get_settings

metrics_app = typer.Typer(help="metrics rollups", no_args_is_help=True)
console = Console(stderr=True)
DASHBOARD_PURPOSE = "dashboard"


async def _rebuild(database_url: str, org: uuid.UUID | None) -> int:
    from sqlalchemy import text

    from services.api.metrics.rollups import rebuild_org
    from shared.db import make_engine, make_sessionmaker

    engine = make_engine(database_url, pool_size=1)
    sessionmaker = make_sessionmaker(engine)
    try:
        async with sessionmaker() as session:
            query = "SELECT o.id, o.name, (SELECT count(*) FROM leads l WHERE l.org_id = o.id) FROM organizations o"
            rows = list(await session.execute(text(query + (" WHERE o.id = :org" if org else "")), {"org": org}))
        total_keys = 0
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("rebuilding rollups (leads)", total=sum(int(n) for _, _, n in rows) or 1)
            for org_id, name, leads in rows:
                progress.update(task, description=f"rebuilding {name[:30]}")
                async with sessionmaker() as session, session.begin():
                    total_keys += await rebuild_org(session, org_id)
                progress.advance(task, int(leads))
        return total_keys
    finally:
        await engine.dispose()


@metrics_app.command("rebuild")
def rebuild(
    org: Annotated[uuid.UUID | None, typer.Option(help="only this organization")] = None,
) -> None:
    """Recompute the metrics rollups from leads and timeline events (blocks lead writes per organization)."""
    from services.cli import _database

    with _database(get_settings()) as url:
        keys = asyncio.run(_rebuild(url, org))
    console.print(f"[green]rebuilt: {keys} rollup rows[/green]")


def make_dashboard_link(
    org_id: uuid.UUID, minutes: int, base_url: str | None = None, settings: Settings | None = None
) -> str:
    from shared import clock, signing
    from shared.service_token import resolve_secret_key

    settings = settings or get_settings()
    token = signing.sign(
        resolve_secret_key(settings),
        DASHBOARD_PURPOSE,
        {"org": str(org_id), "role": "manager"},
        clock.now() + timedelta(minutes=minutes),
    )
    base = (base_url or settings.public_url or settings.api_base_url()).rstrip("/")
    return f"{base}/dashboard?token={token}"


def dashboard_link(
    org_id: uuid.UUID,
    minutes: Annotated[int, typer.Option(min=1, max=7 * 24 * 60, help="how long the link works")] = 60,
    base_url: Annotated[str | None, typer.Option(help="default: PUBLIC_URL, else the API address")] = None,
) -> None:
    """Print a short-lived signed link that opens ORG_ID's metrics dashboard (read-only)."""
    typer.echo(make_dashboard_link(org_id, minutes, base_url))
