"""Every route, walked with a second organization's key and the first one's ids: 404, never data, no change.

The walk reads the app's own OpenAPI, so a route added later is walked too. Path ids and id fields in
bodies come from organization A; the caller is B's admin. A route may also refuse B's body as invalid
(422 on body fields only) before it looks anything up; either way A's rows must be exactly as they were.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import OrgFixture
from tests.signals.helpers import deliver

_PARAM = re.compile(r"{(\w+)}")
NOT_TENANT_SCOPED = {
    "intake_key",
    "kind",
    "provider",
    "token",
    "source",
    "channel",
}  # secrets in the URL, or B's own settings (a source or a channel is a name)


async def _seed(client: httpx.AsyncClient, org: OrgFixture, sessionmaker: Any) -> dict[str, str]:
    """One object of every kind in organization A, by the path parameter name that addresses it."""
    headers = org.headers
    prop = (await client.post("/v1/properties", headers=headers, json={"name": "A Tower"})).json()
    first = await deliver(client, sessionmaker, org.org_id, email="walk-a@example.com", source="zillow")
    lead_id = first["lead_id"]
    lead = (await client.get(f"/v1/leads/{lead_id}", headers=headers)).json()
    task = (await client.post(f"/v1/leads/{lead_id}/tasks", headers=headers, json={"title": "Call"})).json()
    tour = (
        await client.post(
            f"/v1/leads/{lead_id}/tours", headers=headers, json={"starts_at": "2030-06-01T15:00:00+00:00"}
        )
    ).json()
    entry = (await client.post("/v1/blocklist", headers=headers, json={"kind": "email", "value": "x@spam.test"})).json()
    label = (await client.post("/v1/status-labels", headers=headers, json={"name": "Hot", "status": "new"})).json()
    keys = (await client.get("/v1/api-keys", headers=headers)).json()
    ids = {
        "lead_id": lead_id,
        "contact_id": lead["contact_id"],
        "property_id": prop["id"],
        "task_id": task.get("id"),
        "tour_id": tour.get("id"),
        "entry_id": entry.get("id"),
        "label_id": label.get("id"),
        "key_id": keys[0]["id"] if isinstance(keys, list) and keys else None,
        "user_id": str(org.admin_user_id),
        "inbound_id": await _any(sessionmaker, "inbound_messages", org),
        "item_id": await _any(sessionmaker, "review_items", org),
        "merge_id": await _any(sessionmaker, "merges", org),
    }
    return {name: str(value) for name, value in ids.items() if value}


async def _any(sessionmaker: Any, table: str, org: OrgFixture) -> str | None:
    async with sessionmaker() as session:
        value = await session.scalar(text(f"SELECT id FROM {table} WHERE org_id = :org LIMIT 1"), {"org": org.org_id})
    return str(value) if value else None


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


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _sample(spec: dict[str, Any], schema: dict[str, Any], name: str, ids: dict[str, str]) -> Any:
    """A plausible value for a schema; id-like fields get organization A's ids."""
    schema = _resolve(spec, schema)
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            options = [_resolve(spec, option) for option in schema[key] if option.get("type") != "null"]
            return _sample(spec, options[0], name, ids) if options else None
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        return {
            prop: _sample(spec, sub, prop, ids)
            for prop, sub in schema.get("properties", {}).items()
            if prop in schema.get("required", []) or prop.endswith("_id") or prop.endswith("_ids")
        }
    if kind == "array":
        item = _sample(spec, schema.get("items", {}), name.removesuffix("s"), ids)
        return [item] if item is not None else []
    if kind == "string":
        fmt = schema.get("format")
        if fmt == "uuid":
            return ids.get(name, ids.get(name.removesuffix("s"), ids["lead_id"]))
        if fmt == "date-time":
            return datetime(2030, 6, 1, 15, tzinfo=UTC).isoformat()
        if fmt == "date":
            return "2030-06-01"
        if fmt == "email" or "email" in name:
            return "walker@example.com"
        return "walk"
    if kind == "integer":
        return max(1, int(schema.get("minimum", 1)))
    if kind == "number":
        return 1.0
    if kind == "boolean":
        return True
    return None


async def test_every_route_with_an_id_is_a_404_to_another_organization(
    client: httpx.AsyncClient,
    fastapi_app: Any,
    org: OrgFixture,
    other_org: OrgFixture,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    ids = await _seed(client, org, sessionmaker)
    spec = fastapi_app.openapi()
    before = await _fingerprint(sessionmaker, org)
    walked, problems = 0, []
    for template, operations in spec["paths"].items():
        names = _PARAM.findall(template)
        if not names or set(names) <= NOT_TENANT_SCOPED:
            continue
        path = template
        for name in names:
            path = path.replace("{" + name + "}", ids.get(name, str(uuid.uuid4())))
        for method, operation in operations.items():
            if "security" not in operation:
                continue  # a provider's webhook (e.g. Twilio's StatusCallback): its signature, not an API key
            body = None
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                body = _sample(spec, content["application/json"].get("schema", {}), "body", ids)
            answer = await client.request(
                method.upper(), path, headers={**other_org.headers, "If-Match": "*"}, json=body
            )
            walked += 1
            body_only = answer.status_code == 422 and all(
                str(error.get("field", "")).startswith("body") for error in answer.json().get("errors", [])
            )
            if answer.status_code != 404 and not body_only:
                problems.append(f"{method.upper()} {template}: {answer.status_code} {answer.text[:200]}")
            for value in ids.values():
                if answer.status_code != 404 and value in answer.text and value not in path:
                    problems.append(f"{method.upper()} {template}: answer names A's id {value}")
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
    ids = await _seed(client, org, sessionmaker)
    walked = 0
    for template, operations in fastapi_app.openapi()["paths"].items():
        if "{" in template or "get" not in operations:
            continue
        answer = await client.get(template, headers=other_org.headers)
        walked += 1
        assert answer.status_code < 500, (template, answer.text)
        leaked = [name for name, value in ids.items() if value in answer.text]
        assert not leaked, f"GET {template} shows A's {leaked}"
    assert walked >= 10
