"""`guestcard` command line: run everything, run one part, migrate, bootstrap organizations and keys."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from services.cli_secrets import secrets_app
from shared.config import Settings, get_settings

app = typer.Typer(help="guestcard: lead intake and leasing pipeline", no_args_is_help=True)
org_app = typer.Typer(help="organizations", no_args_is_help=True)
apikey_app = typer.Typer(help="API keys", no_args_is_help=True)
app.add_typer(org_app, name="org")
app.add_typer(apikey_app, name="apikey")
app.add_typer(secrets_app, name="secrets")
# metrics: rollup rebuild and the dashboard's signed link
from services.api.metrics.cli import dashboard_link, metrics_app  # noqa: E402

app.add_typer(metrics_app, name="metrics")
app.command("dashboard-link")(dashboard_link)
console = Console(stderr=True)


@contextmanager
def _database(settings: Settings) -> Iterator[str]:
    """DATABASE_URL, or the embedded server (stopped afterwards only if this command started it)."""
    if settings.database_url:
        yield settings.database_url
        return
    from shared.embedded import _stop_postgres, postgres_running, start_postgres

    was_running = postgres_running(settings.data_dir)
    url, pg_data = start_postgres(settings.data_dir)
    try:
        yield url
    finally:
        if not was_running:
            _stop_postgres(pg_data)


@app.command()
def migrate(revision: str = "head") -> None:
    """Apply Alembic migrations up to REVISION."""
    from shared.migrate import upgrade

    with _database(get_settings()) as url:
        upgrade(url, revision)
    console.print(f"[green]migrated to {revision}[/green]")


@app.command()
def api(
    host: Annotated[str | None, typer.Option(envvar="HOST")] = None,
    port: Annotated[int | None, typer.Option(envvar="PORT")] = None,
    workers: int = 1,
) -> None:
    """Serve the HTTP API (needs DATABASE_URL and REDIS_URL)."""
    import uvicorn

    settings = get_settings()
    uvicorn.run(
        "services.api.app:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        log_level=settings.log_level.lower(),
        access_log=False,
        proxy_headers=True,
    )


@app.command()
def worker(burst: bool = False) -> None:
    """Run the arq intake worker (needs DATABASE_URL and REDIS_URL)."""
    import asyncio
    import contextlib

    from services.intake.worker import build_worker

    with contextlib.suppress(ImportError):  # uvloop comes with uvicorn[standard], except on Windows
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())  # the API runs on it too, through uvicorn
    build_worker(burst=burst).run()


@app.command()
def run(
    host: Annotated[str | None, typer.Option(envvar="HOST")] = None,
    port: Annotated[int | None, typer.Option(envvar="PORT")] = None,
    api_workers: Annotated[
        int,
        typer.Option(
            envvar="GUESTCARD_API_WORKERS",
            min=1,
            help="public API processes (uvicorn workers); the worker's hand-offs go to the applier either way",
        ),
    ] = 1,
    applier: Annotated[
        bool,
        typer.Option(
            envvar="GUESTCARD_APPLIER",
            help="a second API process, on an internal port and at lower CPU priority, takes the worker's "
            "hand-offs, so a burst of webhooks is answered first and applied after (docs/architecture.md)",
        ),
    ] = True,
    background_nice: Annotated[
        int,
        typer.Option(envvar="GUESTCARD_BACKGROUND_NICE", min=0, max=19, help="niceness of the applier and worker"),
    ] = 10,
) -> None:
    """Everything: embedded servers unless URLs are set, migrations, API and worker, supervised: a crashed
    child is restarted with backoff. Ctrl-C (or SIGTERM) stops everything."""
    from services.supervisor import Supervisor
    from shared.embedded import die_with_parent, ensure_servers, free_port, start_redis
    from shared.logging import configure_logging
    from shared.migrate import upgrade
    from shared.service_token import resolve_service_token

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    host = host or settings.host
    port = port or settings.port
    # the embedded Redis is a supervised child (restarted on its port, its saved queue reloaded); the
    # embedded PostgreSQL is managed by pg_ctl and recovers by itself
    redis_url = settings.redis_url
    redis_port = None if redis_url else free_port()
    if redis_port is not None:
        redis_url = f"redis://127.0.0.1:{redis_port}/0"
    servers = ensure_servers(settings.data_dir, settings.database_url, redis_url)
    supervisor = Supervisor()
    signal.signal(signal.SIGINT, supervisor.stop)
    signal.signal(signal.SIGTERM, supervisor.stop)
    try:
        assert servers.database_url and redis_url
        if redis_port is not None:
            supervisor.add("redis", lambda: start_redis(settings.data_dir, redis_port)[1])
        upgrade(servers.database_url)
        env = {
            **os.environ,
            "DATABASE_URL": servers.database_url,
            "REDIS_URL": redis_url,
            "GUESTCARD_SERVICE_TOKEN": resolve_service_token(settings),
            "GUESTCARD_API_URL": settings.api_url or f"http://{host}:{port}",
        }
        command = [sys.executable, "-m", "services.cli"]
        # the webhook answer must not wait for the rest of the pipeline: hand-offs go to their own API process
        # and, with the worker's parsing and sends, run at a lower CPU priority than the public API
        applier_port = free_port() if applier and not settings.api_url else None
        background_env = (
            {**env, "GUESTCARD_API_URL": f"http://127.0.0.1:{applier_port}"} if applier_port is not None else env
        )

        def spawn(*args: str, niceness: int = 0, environ: dict[str, str] = env) -> subprocess.Popen[bytes]:
            def prepare() -> None:
                die_with_parent()
                if niceness:
                    os.nice(niceness)

            # own session: Ctrl-C reaches the supervisor only, which stops the children in order
            return subprocess.Popen(  # noqa: S603 - our own interpreter and module
                [*command, *args], env=environ, start_new_session=True, preexec_fn=prepare
            )

        supervisor.add("api", lambda: spawn("api", "--host", host, "--port", str(port), "--workers", str(api_workers)))
        if applier_port is not None:
            supervisor.add(
                "applier",
                lambda: spawn("api", "--host", "127.0.0.1", "--port", str(applier_port), niceness=background_nice),
            )
        supervisor.add("worker", lambda: spawn("worker", niceness=background_nice, environ=background_env))
        supervisor.start_all()
        console.print(
            f"[green]guestcard on http://{host}:{port}[/green] (API, applier and worker, restarted if they crash). "
            "Ctrl-C stops everything."
        )
        supervisor.run_until_stopped()
    finally:
        supervisor.stop_all()
        servers.stop()
        console.print("stopped")


async def _in_transaction(database_url: str, work: Any) -> Any:
    from shared.db import make_engine, make_sessionmaker, transaction

    engine = make_engine(database_url, pool_size=1)
    try:
        async with transaction(make_sessionmaker(engine)) as session:
            return await work(session)
    finally:
        await engine.dispose()


@org_app.command("create")
def org_create(
    name: str,
    admin_email: Annotated[str | None, typer.Option(help="email of the first admin user")] = None,
    country: str = "US",
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Create an organization with its first admin key and intake key (both shown once)."""
    from services.api.auth.service import create_organization

    async def work(session: Any) -> dict[str, str]:
        created = await create_organization(session, name, admin_email, country)
        return {
            "org_id": str(created.org.id),
            "name": created.org.name,
            "admin_user_id": str(created.admin.id),
            "api_key": created.api_key,
            "intake_key": created.intake_key,
        }

    with _database(get_settings()) as url:
        result = asyncio.run(_in_transaction(url, work))
    if as_json:
        typer.echo(json.dumps(result))
    else:
        for key, value in result.items():
            typer.echo(f"{key}: {value}")
        console.print("[yellow]Store the keys now: they are not shown again.[/yellow]")


@apikey_app.command("create")
def apikey_create(
    org_id: uuid.UUID,
    name: str = "cli",
    role: str = "admin",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Create an API key for ORG_ID (shown once)."""
    from services.api.auth.service import create_api_key
    from shared.enums import Role

    async def work(session: Any) -> dict[str, str]:
        secret, row = await create_api_key(session, org_id, name, Role(role))
        return {"id": str(row.id), "api_key": secret, "role": role}

    with _database(get_settings()) as url:
        result = asyncio.run(_in_transaction(url, work))
    typer.echo(json.dumps(result) if as_json else f"{result['id']}: {result['api_key']}")


@apikey_app.command("revoke")
def apikey_revoke(org_id: uuid.UUID, key_id: uuid.UUID) -> None:
    """Revoke an API key at once."""
    from services.api.auth.service import revoke_api_key

    async def work(session: Any) -> None:
        await revoke_api_key(session, org_id, key_id)

    with _database(get_settings()) as url:
        asyncio.run(_in_transaction(url, work))
    typer.echo("revoked")


@app.command("import")
def import_leads(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="a CSV file")],
    org: Annotated[uuid.UUID, typer.Option("--org", help="organization id")],
    preset: Annotated[str, typer.Option(help="generic | guestcard | knock")] = "generic",
    mapping: Annotated[list[str] | None, typer.Option("--map", help='"CSV header=field", repeatable')] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="report without saving")] = False,
    property_id: Annotated[uuid.UUID | None, typer.Option("--property", help="default property id")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Import leads from CSV, matched like intake, with a progress bar (the batch also shows in /v1/imports)."""
    from services.api.imports.cli import import_file

    pairs = dict(item.split("=", 1) for item in mapping or [] if "=" in item)
    settings = get_settings()
    with _database(settings) as url:
        result = asyncio.run(
            import_file(
                url,
                settings.redis_url,
                settings.queue_name,
                file.read_bytes(),
                file.name,
                org,
                preset=preset,
                mapping=pairs,
                dry_run=dry_run,
                property_id=property_id,
                console=console,
            )
        )
    if as_json:
        typer.echo(json.dumps(result))


@app.command()
def openapi(output: Path = Path("openapi.yaml"), check: bool = False) -> None:
    """Write the app's OpenAPI document (or, with --check, fail if the file differs)."""
    from services.api.openapi_export import render_openapi

    rendered = render_openapi()
    if check:
        current = output.read_text() if output.exists() else ""
        if current != rendered:
            console.print(f"[red]{output} is out of date: run `make openapi`[/red]")
            raise typer.Exit(1)
        console.print(f"{output} is up to date")
        return
    output.write_text(rendered)
    console.print(f"wrote {output}")


if __name__ == "__main__":
    app()
