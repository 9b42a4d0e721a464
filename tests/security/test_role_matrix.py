"""The role matrix, per route: every route of the app's route table, called by every kind of caller.

`services/api/access.py` declares who may call each route. Allowed means the route answers the caller with
anything but 401/403 (a 404 for an id outside an agent's scope is allowed: the scope is tested in
tests/owners); refused means 401 or 403. A route without an entry fails here, so a new route must say who may
call it. The same walk proves that every write an API key made left an audit entry, that no key, token or
provider secret reached a log line, and that openapi.yaml names every 403. The walk's lead is the agent's
own, at a property whose team the agent is on, so an agent's calls reach the handler, not only its scope check.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api.access import MATRIX, Caller, Gate, allowed, render
from tests.conftest import ROOT, OrgFixture
from tests.owners.helpers import person, property_with_team
from tests.security.walk import Operation, operations, seed

REFUSED = {401, 403}
WRITES = {"POST", "PUT", "PATCH", "DELETE"}
API_KEYS = {Caller.agent, Caller.manager, Caller.admin}
CONVERTER = re.compile(r"{(\w+):\w+}")
# where the credential is a path segment, a wrong one is an unknown URL: 404 (docs/intake.md) refuses too
IN_PATH = {"intake_key"}
# run after the rest: they take away what later routes address (an archive, a revoked key, a moved lead)
LAST = {"POST /v1/users/{user_id}/reassign", "POST /v1/intake-key/rotate"}
# path parameters that are names or secrets, not ids of the organization's rows
NAMES = {"kind": "web-form", "provider": "twilio", "channel": "sms", "source": "zillow", "token": "not-a-token"}


def _order(operation: Operation) -> tuple[bool, str]:
    return operation.method == "DELETE" or operation.key in LAST, operation.key


async def test_every_route_answers_exactly_the_callers_the_matrix_declares_and_every_write_is_audited(
    client: httpx.AsyncClient,
    fastapi_app: Any,
    app_state: Any,
    org: OrgFixture,
    sessionmaker: async_sessionmaker[AsyncSession],
    capfd: pytest.CaptureFixture[str],
) -> None:
    manager = await person(client, org, "Mona Manager", "manager")
    agent = await person(client, org, "Avery Agent", "agent")
    property_id = await property_with_team(client, org, [(agent, 1)])
    ids = await seed(client, org, sessionmaker, property_id)
    lead = (await client.get(f"/v1/leads/{ids['lead_id']}", headers=agent.headers)).json()
    assert lead["owner_id"] == str(agent.id), "the walk's lead must be the agent's own"
    spare = await client.post("/v1/api-keys", headers=org.headers, json={"name": "spare", "role": "agent"})
    ids |= {"key_id": spare.json()["id"], "user_id": str(agent.id)}  # revoke a spare key; edit the agent
    provider_secret = f"walk-provider-secret-{uuid.uuid4().hex}"
    put = await client.put("/v1/integrations/callrail", headers=org.headers, json={"signing_secret": provider_secret})
    assert put.status_code == 204
    intake_key = org.intake_key
    bearer = {
        Caller.none: None,
        Caller.service: app_state.service_token,
        Caller.agent: agent.headers["Authorization"].removeprefix("Bearer "),
        Caller.manager: manager.headers["Authorization"].removeprefix("Bearer "),
        Caller.admin: org.api_key,
    }
    secrets = {provider_secret, intake_key, *(value for value in bearer.values() if value)}
    capfd.readouterr()  # only what the walk logs
    spec = fastapi_app.openapi()
    walked, problems, written = set(), [], set()
    for operation in sorted(operations(fastapi_app), key=_order):
        who = MATRIX.get(operation.key)
        if who is None:
            problems.append(f"{operation.key}: no entry in services/api/access.py MATRIX")
            continue
        walked.add(operation.key)
        body = operation.json_body(spec, ids, id_fields=False)
        answers: dict[Caller, int] = {}
        for caller in Caller:
            secret = intake_key if caller is Caller.intake else bearer[caller]
            values = {name: ids.get(name, NAMES.get(name, str(uuid.uuid4()))) for name in operation.params}
            values["intake_key"] = intake_key if caller is Caller.intake else "gci_not-a-key"
            headers = {"If-Match": "*"} | ({"Authorization": f"Bearer {secret}"} if secret else {})
            answer = await client.request(operation.method, operation.url(values), headers=headers, json=body)
            answers[caller] = answer.status_code
            if operation.method in WRITES and caller in API_KEYS and answer.is_success:
                written.add(operation.key)
            if answer.status_code >= 500:
                problems.append(f"{operation.key} as {caller.value}: {answer.status_code} {answer.text[:160]}")
            if operation.key == "POST /v1/intake-key/rotate" and answer.status_code == 200:
                intake_key = answer.json()["intake_key"]  # the intake caller keeps its (new) key
                secrets.add(intake_key)
        documented = (operation.spec or {}).get("responses", {})
        if operation.spec and 403 in answers.values() and "403" not in documented:
            problems.append(f"{operation.key}: answers 403, and openapi.yaml does not say so")
        if who is Gate.link:
            if len(set(answers.values())) != 1 or not 400 <= answers[Caller.admin] < 500:
                problems.append(f"{operation.key}: an API key changes a link route's answer: {answers}")
            continue
        refused = REFUSED | ({404} if IN_PATH & set(operation.params) else set())
        for caller, status in answers.items():
            if allowed(who, caller) == (status in refused):
                want = "allowed" if allowed(who, caller) else "refused"
                problems.append(f"{operation.key} as {caller.value}: {status}, declared {want}")
    out, err = capfd.readouterr()
    logged = [secret[:12] + "…" for secret in secrets if secret in out or secret in err]
    assert not logged, f"secrets in the log: {logged}"  # issue 14: never in a response or a log
    stale = set(MATRIX) - walked
    assert not stale, f"matrix entries for routes the app does not have: {sorted(stale)}"
    assert len(walked) >= 150
    assert not problems, "\n".join(problems)
    # issue 14: GET /v1/audit is who changed what, for every write through the API
    async with sessionmaker() as session:
        rows = await session.execute(
            text("SELECT DISTINCT method, route FROM audit_entries WHERE org_id = :org"), {"org": org.org_id}
        )
        audited = {method + " " + CONVERTER.sub(r"{\1}", route) for method, route in rows}
    assert len(written) >= 40
    assert not written - audited, f"writes that left no audit entry: {sorted(written - audited)}"


def test_docs_render_the_matrix() -> None:
    """docs/access.md is the table in services/api/access.py (`make access-doc` rewrites it)."""
    assert (Path(ROOT) / "docs" / "access.md").read_text() == render()
