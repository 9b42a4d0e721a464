"""Provider secrets are ciphertext in PostgreSQL, plaintext to the code, and rotate to a new key."""

from __future__ import annotations

import base64
import hashlib
import hmac

import httpx
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared import crypto
from shared.config import Settings
from shared.secrets_rotation import rotate_all
from tests.conftest import OrgFixture


async def _stored(sessionmaker: async_sessionmaker[AsyncSession], org: OrgFixture) -> str:
    async with sessionmaker() as session:
        value = await session.scalar(
            text("SELECT signing_secret FROM integrations WHERE org_id = :org AND provider = 'callrail'"),
            {"org": org.org_id},
        )
    assert isinstance(value, str)
    return value


async def _signed_callrail(client: httpx.AsyncClient, org: OrgFixture, secret: str, n: int) -> int:
    body = f'{{"id": "call-{n}", "customer_phone_number": "+17035550{n:03d}", "answered": false}}'.encode()
    signature = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha1).digest()).decode()
    answer = await client.post(
        f"/v1/intake/{org.intake_key}/callrail",
        content=body,
        headers={"Content-Type": "application/json", "Signature": signature},
    )
    return answer.status_code


async def test_secrets_are_encrypted_at_rest_and_rotate(
    client: httpx.AsyncClient,
    org: OrgFixture,
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = "callrail-signing-key-123"
    put = await client.put("/v1/integrations/callrail", headers=org.headers, json={"signing_secret": secret})
    assert put.status_code == 204
    stored = await _stored(sessionmaker, org)
    assert secret not in stored and stored.startswith("gAAAAA")
    assert await _signed_callrail(client, org, secret, 1) == 202  # decrypted for the signature check
    listed = await client.get("/v1/integrations", headers=org.headers)
    assert secret not in listed.text

    old_key = crypto._keys(settings)[0].decode()
    new_key = Fernet.generate_key().decode()
    try:
        crypto.configure(settings.model_copy(update={"encryption_keys": f"{new_key},{old_key}"}))
        async with sessionmaker() as session, session.begin():
            assert await rotate_all(session) >= 1
        rotated = await _stored(sessionmaker, org)
        assert rotated != stored
        crypto.configure(settings.model_copy(update={"encryption_keys": new_key}))  # the old key is gone
        assert await _signed_callrail(client, org, secret, 2) == 202
        assert Fernet(new_key.encode()).decrypt(rotated.encode()).decode() == secret
    finally:
        # rotate_all walked every organization in the test database: put them all back under the suite's key
        crypto.configure(settings.model_copy(update={"encryption_keys": f"{old_key},{new_key}"}))
        async with sessionmaker() as session, session.begin():
            await rotate_all(session)
        crypto.configure(settings)
        async with sessionmaker() as session, session.begin():
            await session.execute(text("DELETE FROM integrations WHERE org_id = :org"), {"org": org.org_id})


def test_plaintext_from_before_encryption_is_still_read_and_rotation_encrypts_it(settings: Settings) -> None:
    crypto.configure(settings)
    assert crypto.decrypt("legacy-plaintext") == "legacy-plaintext"
    token = crypto.reencrypt("legacy-plaintext")
    assert token.startswith("gAAAAA") and crypto.decrypt(token) == "legacy-plaintext"
    crypto.configure(settings.model_copy(update={"encryption_keys": Fernet.generate_key().decode()}))
    try:
        with pytest.raises(crypto.SecretUnreadable):
            crypto.decrypt(token)
    finally:
        crypto.configure(settings)


def test_the_rotate_command_runs(settings: Settings) -> None:
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url or "",
        "REDIS_URL": settings.redis_url or "",
        "GUESTCARD_DATA_DIR": str(settings.data_dir),
    }
    done = subprocess.run(
        [Path(sys.executable).parent / "guestcard", "secrets", "rotate"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "re-encrypted" in done.stdout
