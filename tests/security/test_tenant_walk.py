"""Every route, walked with a second organization's key and the first one's ids: 404, never data, no change.

The walk reads the app's own OpenAPI, so a route added later is walked too. Path ids and id fields in
bodies come from organization A; the caller is B's admin. A route may also refuse B's body as invalid
(422 on body fields only) before it looks anything up; either way A's rows must be exactly as they were.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import OrgFixture
from tests.security.walk import operations, seed

NOT_TENANT_SCOPED = {
    "intake_key",
    "kind",
    "provider",
    "token",
    "source",
    "channel",
}  # secrets in the URL, or B's own settings (a source or a channel is a name)


async def _fingerprint(sessionmaker: async_sessionmaker[AsyncSession], org: OrgFixture) -> dict[str, str]:
    """A digest of every org-scoped row of A: any change anywhere shows."""
    async with sessionmaker() as session:
        tables = (
            await session.execute(
                text(
                    "SELECT table_name FROM information_schema.columns WHERE column_name = 'org_id' "
                    "AND table_schema = 'public' AND table_name <> 'audit_entries'"
                )
            )
        ).scalars()
        digest = {}
        for table in sorted(set(tables)):
            digest[table] = await session.scalar(
                text(
                    f"SELECT md5(COALESCE(string_agg(to_jsonb(t)::text, '|' ORDER BY to_jsonb(t)::text), '')) "
                    f"FROM {table} t WHERE org_id = :org"
                ),
                {"org": org.org_id},
            )
    return digest


async def test_every_route_with_an_id_is_a_404_to_another_organization(
    client: httpx.AsyncClient,
    fastapi_app: Any,
    org: OrgFixture,
    other_org: OrgFixture,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    ids = await seed(client, org, sessionmaker)
    spec = fastapi_app.openapi()
    before = await _fingerprint(sessionmaker, org)
    walked, problems = 0, []
    for operation in operations(fastapi_app):
        names = operation.params
        if not names or set(names) <= NOT_TENANT_SCOPED or operation.spec is None:
            continue  # no id to take; or not an API-key route (docs, the signed offer link)
        if "security" not in operation.spec:
            continue  # a provider's webhook (e.g. Twilio's StatusCallback): its signature, not an API key
        path = operation.url({name: ids.get(name, str(uuid.uuid4())) for name in names})
        body = operation.json_body(spec, ids)
        answer = await client.request(operation.method, path, headers={**other_org.headers, "If-Match": "*"}, json=body)
        walked += 1
        body_only = answer.status_code == 422 and all(
            str(error.get("field", "")).startswith("body") for error in answer.json().get("errors", [])
        )
        if answer.status_code != 404 and not body_only:
            problems.append(f"{operation.key}: {answer.status_code} {answer.text[:200]}")
        for value in ids.values():
            if answer.status_code != 404 and value in answer.text and value not in path:
                problems.append(f"{operation.key}: answer names A's id {value}")
    assert walked >= 25
    assert not problems, "\n".join(problems)
    assert await _fingerprint(sessionmaker, org) == before, "a request by B changed A's data"


async def test_no_list_or_report_shows_another_organizations_rows(
    client: httpx.AsyncClient,
    fastapi_app: Any,
    org: OrgFixture,
    other_org: OrgFixture,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    ids = await seed(client, org, sessionmaker)
    walked = 0
    for operation in operations(fastapi_app):
        if operation.params or operation.method != "GET" or operation.spec is None:
            continue
        answer = await client.get(operation.path, headers=other_org.headers)
        walked += 1
        assert answer.status_code < 500, (operation.key, answer.text)
        leaked = [name for name, value in ids.items() if value in answer.text]
        assert not leaked, f"{operation.key} shows A's {leaked}"
    assert walked >= 10
