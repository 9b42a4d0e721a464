"""Re-encrypt every `EncryptedText` column under the newest key (`guestcard secrets rotate`)."""

from __future__ import annotations

from sqlalchemy import Text, select, type_coerce, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared import crypto
from shared.models import Base


async def rotate_all(session: AsyncSession) -> int:
    """Rewrite each stored secret as ciphertext under the first configured key; returns how many."""
    count = 0
    for table in Base.metadata.sorted_tables:
        columns = [column for column in table.columns if isinstance(column.type, crypto.EncryptedText)]
        if not columns:
            continue
        keys = list(table.primary_key.columns)
        for column in columns:
            raw = type_coerce(column, Text)  # the stored text, not the decrypted value
            rows = (await session.execute(select(*keys, raw.label("stored")).where(column.is_not(None)))).all()
            for row in rows:
                fresh = crypto.reencrypt(row.stored)
                where = [key == getattr(row, key.name) for key in keys]
                await session.execute(update(table).where(*where).values({column.name: type_coerce(fresh, Text)}))
                count += 1
    return count
