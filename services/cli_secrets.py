"""`guestcard secrets …`: key rotation for provider secrets encrypted at rest."""

from __future__ import annotations

import asyncio
from typing import Any

import typer

from shared.config import get_settings

secrets_app = typer.Typer(help="provider secrets encrypted at rest", no_args_is_help=True)


@secrets_app.command("rotate")
def rotate() -> None:
    """Re-encrypt every stored provider secret under the first key of GUESTCARD_ENCRYPTION_KEYS.

    Put the new key first, run this, then remove the old key from the list.
    """
    from services.cli import _database, _in_transaction
    from shared import crypto
    from shared.secrets_rotation import rotate_all

    settings = get_settings()
    crypto.configure(settings)

    async def work(session: Any) -> int:
        return await rotate_all(session)

    with _database(settings) as url:
        count = asyncio.run(_in_transaction(url, work))
    typer.echo(f"re-encrypted {count} secret(s) under the newest key")
