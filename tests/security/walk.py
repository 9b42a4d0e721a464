"""Walking the app's route table: every route, its OpenAPI operation, and plausible requests for it.

Shared by the tenant walk and the role-matrix walk, so a route added later is walked by both.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from sqlalchemy import text

from tests.conftest import OrgFixture
from tests.signals.helpers import deliver

PARAM = re.compile(r"{(\w+)}")


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # the template without converters, e.g. /v1/intake/{intake_key}/{kind}
    spec: dict[str, Any] | None  # its OpenAPI operation; None for routes left out of the document

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def params(self) -> list[str]:
        return PARAM.findall(self.path)

    def url(self, values: dict[str, str]) -> str:
        url = self.path
        for name in self.params:
            url = url.replace("{" + name + "}", values[name])
        return url

    def json_body(self, spec: dict[str, Any], ids: dict[str, str], *, id_fields: bool = True) -> Any:
        content = (self.spec or {}).get("requestBody", {}).get("content", {})
        if "application/json" not in content:
            return None
        return sample(spec, content["application/json"].get("schema", {}), "body", ids, id_fields=id_fields)


def operations(app: FastAPI) -> Iterator[Operation]:
    """Every method of every route in the app's route table (HEAD only where a route declares it alone)."""
    spec = app.openapi()["paths"]
    for context in iter_route_contexts(app.routes):
        path = getattr(context, "path_format", None) or context.path
        methods = context.methods or set()
        for method in sorted(methods - {"HEAD"} if methods - {"HEAD"} else methods):
            yield Operation(method, path, spec.get(path, {}).get(method.lower()))


def resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def sample(
    spec: dict[str, Any], schema: dict[str, Any], name: str, ids: dict[str, str], *, id_fields: bool = True
) -> Any:
    """A plausible value for a schema: required fields (and, with `id_fields`, every *_id field) filled in;
    id-like strings get the walker's ids by field name."""
    schema = resolve(spec, schema)
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            options = [resolve(spec, option) for option in schema[key] if option.get("type") != "null"]
            return sample(spec, options[0], name, ids, id_fields=id_fields) if options else None
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        required = schema.get("required", [])
        return {
            prop: sample(spec, sub, prop, ids, id_fields=id_fields)
            for prop, sub in schema.get("properties", {}).items()
            if prop in required or (id_fields and (prop.endswith("_id") or prop.endswith("_ids")))
        }
    if kind == "array":
        item = sample(spec, schema.get("items", {}), name.removesuffix("s"), ids, id_fields=id_fields)
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


async def seed(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: Any, property_id: uuid.UUID | None = None
) -> dict[str, str]:
    """One object of every kind in the organization, by the path parameter name that addresses it.

    With `property_id`, the lead comes in for that property (and its team's strategy gives it an owner)."""
    headers = org.headers
    if property_id is None:
        prop = (await client.post("/v1/properties", headers=headers, json={"name": "A Tower"})).json()
    else:
        prop = {"id": str(property_id)}
    first = await deliver(
        client, sessionmaker, org.org_id, email="walk-a@example.com", source="zillow", property_id=property_id
    )
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
