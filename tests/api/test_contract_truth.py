"""The answers match the contract: honest Allow on 405, typed path segments, strict types, no 500s."""

from __future__ import annotations

import uuid

import httpx

from tests.conftest import OrgFixture


async def test_405_lists_every_method_the_path_serves(client: httpx.AsyncClient, org: OrgFixture) -> None:
    answer = await client.request("OPTIONS", "/v1/api-keys", headers=org.headers)
    assert answer.status_code == 405
    assert answer.headers["content-type"] == "application/problem+json"
    assert set(answer.headers["allow"].split(", ")) == {"GET", "POST"}
    lead = await client.request("PUT", f"/v1/leads/{uuid.uuid4()}", headers=org.headers)
    assert set(lead.headers["allow"].split(", ")) == {"GET", "PATCH"}


async def test_a_named_resource_is_not_a_bad_id(client: httpx.AsyncClient, org: OrgFixture) -> None:
    # /v1/leads/invitations is its own resource (POST only), not /v1/leads/{lead_id} with a bad id
    answer = await client.patch("/v1/leads/invitations", headers=org.headers, json={})
    assert answer.status_code == 405
    assert answer.headers["allow"] == "POST"
    assert (await client.get("/v1/leads/not-a-uuid", headers=org.headers)).status_code == 404
    upper = str(uuid.uuid4()).upper()  # UUIDs match case-insensitively
    assert (await client.get(f"/v1/leads/{upper}", headers=org.headers)).status_code == 404


async def test_date_times_must_be_iso(client: httpx.AsyncClient, org: OrgFixture) -> None:
    cases = (
        ("/v1/inbound", "received_to"),
        ("/v1/leads", "created_from"),
        ("/v1/tasks", "due_before"),
        ("/v1/audit", "from"),
    )
    for path, name in cases:
        for number in ("0.5", "1.5125424640497444e-177", "-3", "inf"):  # pydantic would read each as a Unix time
            bad = await client.get(path, headers=org.headers, params={name: number})
            assert bad.status_code == 422, (path, number, bad.text)
            assert bad.json()["errors"][0]["field"] == f"query.{name}"
        good = await client.get(path, headers=org.headers, params={name: "2026-06-01T09:00:00-04:00"})
        assert good.status_code == 200, (path, good.text)


async def test_owner_filters_name_their_form(client: httpx.AsyncClient, org: OrgFixture) -> None:
    assert (await client.get("/v1/leads", headers=org.headers, params={"owner_id": ""})).status_code == 422
    assert (await client.get("/v1/leads", headers=org.headers, params={"owner_id": "none"})).status_code == 200
    assert (await client.get("/v1/tasks", headers=org.headers, params={"owner_id": "me"})).status_code == 200


async def test_an_api_key_for_an_unknown_user_is_a_422_not_a_500(client: httpx.AsyncClient, org: OrgFixture) -> None:
    answer = await client.post(
        "/v1/api-keys", headers=org.headers, json={"name": "ghost", "user_id": str(uuid.uuid4())}
    )
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == "body.user_id"


async def test_a_body_that_is_not_json_is_a_documented_400(client: httpx.AsyncClient, org: OrgFixture) -> None:
    answer = await client.post(
        "/v1/leads", headers={**org.headers, "Content-Type": "application/json"}, content=b"\xff\xfe{"
    )
    assert answer.status_code in (400, 422)
    assert answer.headers["content-type"] == "application/problem+json"
