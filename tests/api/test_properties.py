from __future__ import annotations

import httpx

from tests.conftest import OrgFixture


async def test_property_crud_normalizes_phones(client: httpx.AsyncClient, org: OrgFixture) -> None:
    created = await client.post(
        "/v1/properties",
        json={
            "name": "Maple Court",
            "address_line1": "12 Maple St",
            "city": "Austin",
            "state": "TX",
            "timezone": "America/Chicago",
            "phone_numbers": ["(703) 868-3162", "+1 703 868 3162", "512.555.0199"],
            "listing_ids": ["ZL-123"],
            "inbound_alias": " Maple@Leads.Example.com ",
        },
        headers=org.headers,
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["phone_numbers"] == ["+17038683162", "+15125550199"]
    assert body["inbound_alias"] == "maple@leads.example.com"

    fetched = await client.get(f"/v1/properties/{body['id']}", headers=org.headers)
    assert fetched.json()["name"] == "Maple Court"

    patched = await client.patch(f"/v1/properties/{body['id']}", json={"name": "Maple Ct"}, headers=org.headers)
    assert patched.status_code == 200
    assert patched.json()["name"] == "Maple Ct"
    assert patched.json()["city"] == "Austin"

    archived = await client.delete(f"/v1/properties/{body['id']}", headers=org.headers)
    assert archived.status_code == 204
    listed = await client.get("/v1/properties", headers=org.headers)
    assert listed.json()["items"] == []
    with_archived = await client.get("/v1/properties?include_archived=true", headers=org.headers)
    assert [item["id"] for item in with_archived.json()["items"]] == [body["id"]]


async def test_another_organizations_property_is_404(
    client: httpx.AsyncClient, org: OrgFixture, other_org: OrgFixture
) -> None:
    created = await client.post("/v1/properties", json={"name": "Mine"}, headers=org.headers)
    property_id = created.json()["id"]
    for method in ("GET", "PATCH", "DELETE"):
        response = await client.request(
            method,
            f"/v1/properties/{property_id}",
            headers=other_org.headers,
            json={"name": "x"} if method == "PATCH" else None,
        )
        assert response.status_code == 404, method
        assert response.headers["content-type"] == "application/problem+json"
    assert (await client.get("/v1/properties", headers=other_org.headers)).json()["items"] == []


async def test_validation_errors_name_each_field(client: httpx.AsyncClient, org: OrgFixture) -> None:
    response = await client.post(
        "/v1/properties",
        json={"name": "", "timezone": "Mars/Olympus", "phone_numbers": ["not a phone"], "surprise": 1},
        headers=org.headers,
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    fields = {error["field"] for error in response.json()["errors"]}
    assert {"body.name", "body.timezone", "body.phone_numbers", "body.surprise"} <= fields


async def test_malformed_json_is_a_problem(client: httpx.AsyncClient, org: OrgFixture) -> None:
    response = await client.post(
        "/v1/properties", content=b"{not json", headers={**org.headers, "content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"].startswith("body")


async def test_cursor_pagination_walks_every_property_once(client: httpx.AsyncClient, org: OrgFixture) -> None:
    names = [f"Property {index:02d}" for index in range(7)]
    for name in names:
        assert (await client.post("/v1/properties", json={"name": name}, headers=org.headers)).status_code == 201
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/v1/properties", params=params, headers=org.headers)).json()
        seen += [item["name"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == names
    bad = await client.get("/v1/properties", params={"cursor": "!!!"}, headers=org.headers)
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "query.cursor"


async def test_a_nul_character_is_a_validation_problem_not_a_server_error(
    client: httpx.AsyncClient, org: OrgFixture
) -> None:
    response = await client.post("/v1/properties", json={"name": "Bad\u0000Name"}, headers=org.headers)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert "NUL" in response.json()["detail"]
    assert (await client.get("/v1/properties", headers=org.headers)).json()["items"] == []


async def test_an_archived_property_is_gone_from_the_working_set_until_restored(
    client: httpx.AsyncClient, org: OrgFixture
) -> None:
    created = (await client.post("/v1/properties", headers=org.headers, json={"name": "Old Mill"})).json()
    url = f"/v1/properties/{created['id']}"
    assert (await client.delete(url, headers=org.headers)).status_code == 204
    assert (await client.get(url, headers=org.headers)).status_code == 404
    assert (await client.patch(url, headers=org.headers, json={"name": "New Mill"})).status_code == 404
    assert (await client.delete(url, headers=org.headers)).status_code == 404
    found = await client.get(url, headers=org.headers, params={"include_archived": "true"})
    assert found.status_code == 200 and found.json()["is_archived"] is True
    restored = await client.patch(
        url, headers=org.headers, params={"include_archived": "true"}, json={"is_archived": False}
    )
    assert restored.status_code == 200, restored.text
    assert (await client.get(url, headers=org.headers)).json()["is_archived"] is False
    strict = await client.patch(url, headers=org.headers, json={"is_archived": 0})
    assert strict.status_code == 422  # a boolean, not a number


async def test_clearing_a_required_field_is_a_422_naming_it_and_changes_nothing(
    client: httpx.AsyncClient, org: OrgFixture
) -> None:
    created = await client.post(
        "/v1/properties", json={"name": "Birch Flats", "timezone": "America/Denver"}, headers=org.headers
    )
    property_id = created.json()["id"]
    refused = await client.patch(
        f"/v1/properties/{property_id}", json={"name": None, "city": "Boulder"}, headers=org.headers
    )
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert [error["field"] for error in refused.json()["errors"]] == ["body.name"]
    unchanged = (await client.get(f"/v1/properties/{property_id}", headers=org.headers)).json()
    assert (unchanged["name"], unchanged["city"]) == ("Birch Flats", None)
