"""GET /v1/leads, /v1/leads/{id} and its timeline through the ASGI fast path (services/api/leads/fast.py): the
routes' answers byte for byte, and the routes themselves for everything the fast path does not take."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from services.api.auth import cache as principal_cache
from services.api.auth.keys import hash_secret
from services.api.leads import fast as fast_reads
from services.api.leads import timeline
from services.api.leads.fast import LeadReadFastPath
from services.api.leads.queries import (
    DEFAULT_PAGE,
    LeadFilters,
    cursor_values,
    filter_terms,
    list_statement,
    next_cursor_for,
    term_values,
)
from shared.db import on_pool
from shared.models import Lead, LeadEvent
from tests.conftest import OrgFixture
from tests.leads.helpers import insert_leads, insert_property
from tests.leads.test_json_out import _varied_leads
from tests.owners.helpers import new_lead, person, property_with_team

SessionMaker = async_sessionmaker[AsyncSession]


async def _long_timeline(sessionmaker: SessionMaker, org: OrgFixture) -> uuid.UUID:
    """A lead with more events than the default page (the next cursor), several at one instant (the id order)."""
    [lead_id] = await insert_leads(sessionmaker, org.org_id, 1)
    at = datetime(2026, 5, 1, 12, tzinfo=UTC)
    async with sessionmaker() as session, session.begin():
        contact_id = await session.scalar(select(Lead.contact_id).where(Lead.id == lead_id))
        rows = [
            {
                "id": uuid.uuid4(),
                "org_id": org.org_id,
                "lead_id": lead_id,
                "contact_id": contact_id,
                "type": "note",
                "occurred_at": at + timedelta(minutes=n // 3),
                "recorded_at": at,
                "actor_type": "user",
                "data": {"body": f"note {n}"},
            }
            for n in range(timeline.DEFAULT_LIMIT + 7)
        ]
        await session.execute(insert(LeadEvent), rows)
    return lead_id


def _is_detail(path: str) -> bool:
    return path.count("/") == 3


async def test_the_fast_answers_equal_the_routes_byte_for_byte(
    client: httpx.AsyncClient, org: OrgFixture, other_org: OrgFixture, sessionmaker: SessionMaker
) -> None:
    """A query string hands a request to the FastAPI route (which ignores an unknown parameter): the same request
    without it is the fast path's. Details and timelines of varied leads, a timeline with a next page, a lead
    without events, and the 404s (another organization's lead, none at all) must be the same bytes."""
    ids = [*await _varied_leads(sessionmaker, org), await _long_timeline(sessionmaker, org)]
    await insert_leads(sessionmaker, org.org_id, DEFAULT_PAGE, start=datetime(2026, 3, 1, tzinfo=UTC))  # a 2nd page
    [foreign] = await insert_leads(sessionmaker, other_org.org_id, 1)
    assert (await client.get("/v1/leads", headers=org.headers)).status_code == 200  # the key is now cached
    leads = [*ids, foreign, uuid.uuid4()]
    paths = ["/v1/leads", *(f"/v1/leads/{lead_id}{suffix}" for lead_id in leads for suffix in ("", "/timeline"))]
    asked = [(path, {}) for path in paths] + [
        (path, {"limit": limit}) for path in paths if not _is_detail(path) for limit in ("1", "3", "101", "500")
    ]
    for path, params in asked:
        fast = await client.get(path, params=params, headers=org.headers)
        routed = await client.get(path, params={**params, "via": "route"}, headers=org.headers)
        assert fast.status_code == routed.status_code, path
        assert fast.content == routed.content, path
        for header in ("content-type", "etag", "cache-control"):
            assert fast.headers.get(header) == routed.headers.get(header), (path, header)
    paged = (await client.get(f"/v1/leads/{ids[-1]}/timeline", headers=org.headers)).json()
    assert len(paged["items"]) == timeline.DEFAULT_LIMIT and paged["next_cursor"] is not None
    cursor = {"cursor": paged["next_cursor"]}
    rest = await client.get(f"/v1/leads/{ids[-1]}/timeline", params=cursor, headers=org.headers)
    assert len(rest.json()["items"]) == 7
    assert (await client.get(f"/v1/leads/{foreign}", headers=org.headers)).status_code == 404
    first = (await client.get("/v1/leads", headers=org.headers)).json()
    assert len(first["items"]) == DEFAULT_PAGE and first["next_cursor"] is not None
    second = await client.get("/v1/leads", params={"cursor": first["next_cursor"]}, headers=org.headers)
    assert len(second.json()["items"]) == len(ids)  # len(ids) + DEFAULT_PAGE leads: a full page, then the rest


async def test_the_fast_path_takes_only_what_it_can_answer_as_the_route_would(
    fastapi_app: Any, client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker
) -> None:
    """Behind it, a stand-in for the FastAPI app records what was handed on: an agent key that belongs to no user,
    an unknown key, no key, any query string, a path the route reads differently (no canonical UUID, a trailing
    slash, another sub-resource) and other methods."""
    [lead_id] = await insert_leads(sessionmaker, org.org_id, 1)
    agent = await client.post("/v1/api-keys", json={"name": "agent", "role": "agent"}, headers=org.headers)
    agent_headers = {"Authorization": f"Bearer {agent.json()['key']}"}
    for headers in (org.headers, agent_headers):  # both keys now in the principal cache
        assert (await client.get("/v1/leads", headers=headers)).status_code == 200
    handed_on: list[str] = []

    async def route(scope: Scope, receive: Receive, send: Send) -> None:
        handed_on.append(f"{scope['method']} {scope['path']}")
        await Response(status_code=299)(scope, receive, send)

    fast = LeadReadFastPath(route)

    async def with_app(scope: Scope, receive: Receive, send: Send) -> None:
        scope["app"] = fastapi_app  # what Starlette sets before the middleware stack runs
        await fast(scope, receive, send)

    detail = f"/v1/leads/{lead_id}"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=with_app), base_url="https://t.test") as raw:
        taken: list[tuple[str, dict[str, str]]] = [
            ("/v1/leads", {}),
            ("/v1/leads", {"limit": "500"}),
            (detail, {}),
            (detail.upper().replace("/V1/LEADS/", "/v1/leads/"), {}),
            (f"{detail}/timeline", {}),
            (f"{detail}/timeline", {"limit": "1"}),
            (f"{detail}/timeline", {"limit": "5", "type": "note"}),
            ("/v1/leads", {"status": "new"}),
            ("/v1/leads", {"status": "lost", "q": "O'Brien %_", "sort": "updated_at", "limit": "7"}),
            ("/v1/leads", {"owner_id": "none", "has_next_action_overdue": "false", "kind": "owner"}),
            ("/v1/leads", {"created_from": "2026-01-01T00:00:00Z", "updated_to": "2026-12-01"}),
            ("/v1/leads", {"property_id": str(lead_id), "source": "x y", "temperature": "cold", "q": "+1 512"}),
        ]
        for path, params in taken:
            answered = await raw.get(path, params=params, headers=org.headers)
            assert answered.status_code == 200, (path, params)
        assert handed_on == []
        refused: list[tuple[str, str, dict[str, str], dict[str, str]]] = [
            ("GET", detail, agent_headers, {}),
            ("GET", detail, {"Authorization": "Bearer gck_not-a-key"}, {}),
            ("GET", detail, {}, {}),
            ("GET", detail, {"Authorization": f"Basic {org.api_key}"}, {}),
            ("GET", detail, org.headers, {"x": "1"}),
            ("GET", f"{detail}/timeline", org.headers, {"limit": "5", "type": "nope"}),
            ("GET", f"{detail}/timeline", org.headers, {"type": ""}),
            ("GET", f"{detail}/timeline", org.headers, {"before": "x"}),
            ("GET", f"{detail}/timeline", org.headers, {"limit": "501"}),
            ("GET", f"{detail}/timeline", org.headers, {"limit": "05"}),
            ("GET", "/v1/leads", org.headers, {"limit": "0"}),
            ("GET", "/v1/leads", org.headers, {"limit": "050"}),
            ("GET", "/v1/leads", org.headers, {"status": ""}),
            ("GET", "/v1/leads", org.headers, {"status": "New"}),
            ("GET", "/v1/leads", org.headers, {"source": "a\x00b"}),
            ("GET", "/v1/leads", org.headers, {"q": "x" * 201}),
            ("GET", "/v1/leads", org.headers, {"has_next_action_overdue": "1"}),
            ("GET", "/v1/leads", org.headers, {"property_id": lead_id.hex}),
            ("GET", "/v1/leads", org.headers, {"owner_id": "me"}),
            ("GET", "/v1/leads", org.headers, {"sort": "name"}),
            ("GET", "/v1/leads", org.headers, {"created_from": "0"}),
            ("GET", "/v1/leads", org.headers, {"created_to": "2026-13-01"}),
            ("GET", "/v1/leads", org.headers, {"x": "1"}),
            ("GET", detail, org.headers, {"limit": "5"}),
            ("GET", f"/v1/leads/{lead_id.hex}", org.headers, {}),
            ("GET", f"{detail}/", org.headers, {}),
            ("GET", f"{detail}/tasks", org.headers, {}),
            ("GET", "/v1/leads/export", org.headers, {}),
            ("GET", "/v1/leads/", org.headers, {}),
            ("POST", "/v1/leads", org.headers, {}),
            ("PATCH", detail, org.headers, {}),
            ("DELETE", detail, org.headers, {}),
        ]
        for method, path, headers, params in refused:
            answer = await raw.request(method, path, headers=headers, params=params)
            assert answer.status_code == 299, (method, path, headers, params)
        repeated = await raw.get("/v1/leads?source=a&source=b", headers=org.headers)
        assert repeated.status_code == 299
    assert len(handed_on) == 33


async def test_a_key_past_the_cache_is_read_here_and_a_stopped_one_goes_to_the_route(
    fastapi_app: Any, client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker
) -> None:
    """A key the principal cache does not hold (new, or kept past its seconds) is read from the database by the
    fast path itself and kept; a revoked key, or the key of a deactivated user, is handed to the route (401)."""
    [lead_id] = await insert_leads(sessionmaker, org.org_id, 1)
    amy, bo = await person(client, org, "Amy Stone"), await person(client, org, "Bo Lake")
    handed_on: list[str] = []

    async def route(scope: Scope, receive: Receive, send: Send) -> None:
        handed_on.append(scope["path"])
        await Response(status_code=299)(scope, receive, send)

    fast = LeadReadFastPath(route)

    async def with_app(scope: Scope, receive: Receive, send: Send) -> None:
        scope["app"] = fastapi_app
        await fast(scope, receive, send)

    cache = principal_cache.cache()
    cache.clear()  # as if every key's seconds had run out
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=with_app), base_url="https://t.test") as raw:
        for headers in (org.headers, amy.headers, bo.headers):
            assert (await raw.get("/v1/leads", headers=headers)).status_code == 200
        assert (await raw.get(f"/v1/leads/{lead_id}", headers=org.headers)).status_code == 200
        assert handed_on == []
        assert cache.get(hash_secret(amy.headers["Authorization"].removeprefix("Bearer "))) is not None
        keys = (await client.get("/v1/api-keys", headers=org.headers)).json()
        [amys] = [key["id"] for key in keys if key["name"] == "Amy Stone"]
        assert (await client.delete(f"/v1/api-keys/{amys}", headers=org.headers)).status_code == 200
        deactivated = await client.patch(f"/v1/users/{bo.id}", json={"active": False}, headers=org.headers)
        assert deactivated.status_code == 200, deactivated.text
        for headers in (amy.headers, bo.headers):
            assert (await raw.get("/v1/leads", headers=headers)).status_code == 299
        cache.clear()
        for headers in (amy.headers, bo.headers):  # read again from the database: still stopped
            assert (await raw.get("/v1/leads", headers=headers)).status_code == 299
        assert (await raw.get("/v1/leads", headers=org.headers)).status_code == 200
    assert handed_on == ["/v1/leads"] * 4
    for headers in (amy.headers, bo.headers):
        assert (await client.get("/v1/leads", headers=headers)).status_code == 401


async def test_an_unknown_lead_is_the_routes_404_problem(client: httpx.AsyncClient, org: OrgFixture) -> None:
    assert (await client.get("/v1/leads", headers=org.headers)).status_code == 200
    missing = f"/v1/leads/{uuid.uuid4()}"
    for path in (missing, f"{missing}/timeline"):
        answer = await client.get(path, headers=org.headers)
        assert answer.status_code == 404
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["instance"] == path and answer.json()["detail"] == "Lead not found."


async def test_the_fast_reads_recover_from_terminated_connections(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker
) -> None:
    """What a PostgreSQL restart does to the statement pool's connections: the next reads still answer (the
    first dead connection met expires the others)."""
    [lead_id] = await insert_leads(sessionmaker, org.org_id, 1)
    paths = ["/v1/leads", f"/v1/leads/{lead_id}", f"/v1/leads/{lead_id}/timeline"]
    for path in paths:  # the key cached, and pooled connections that have served the fast path
        assert (await client.get(path, headers=org.headers)).status_code == 200
    # several connections in the pool at once: the restart leaves more than one dead one behind
    together = await asyncio.gather(*(client.get(path, headers=org.headers) for path in paths * 3))
    assert {answer.status_code for answer in together} == {200}
    async with sessionmaker() as session, session.begin():
        ended = await session.scalar(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND application_name = 'guestcard'"
            )
        )
    assert ended and ended >= 1
    for _ in range(3):
        for path in paths:
            answer = await client.get(path, headers=org.headers)
            assert answer.status_code == 200, (path, answer.text)


async def _filterable_leads(sessionmaker: SessionMaker, org: OrgFixture) -> dict[str, list[str]]:
    """Leads across every value the list filters by, and the values worth asking for (some matching nothing)."""
    properties = [await insert_property(sessionmaker, org.org_id, name) for name in ("Maple Court", "Birch Row")]
    start = datetime(2026, 4, 1, tzinfo=UTC)
    rng = random.Random(16)
    ids = await insert_leads(sessionmaker, org.org_id, 48, start=start, with_identities=True)
    async with sessionmaker() as session, session.begin():
        for n, lead_id in enumerate(ids):
            await session.execute(
                update(Lead)
                .where(Lead.id == lead_id)
                .values(
                    created_at=start + timedelta(minutes=n % 40),  # some share a created_at: the id breaks the tie
                    status=rng.choice(["new", "contacted", "lost", "tour_booked"]),
                    temperature=rng.choice(["hot", "cold"]),
                    property_id=rng.choice([*properties, None]),
                    owner_id=rng.choice([org.admin_user_id, None]),
                    source=rng.choice(["zillow", "website", "Apartments.com"]),
                    kind=rng.choice(["tenant", "owner"]),
                    next_action_type="call",
                    next_action_due_at=datetime.now(UTC) + timedelta(days=rng.choice([-2, 2])),
                    updated_at=start + timedelta(hours=rng.randrange(100)),
                )
            )
    return {
        "status": ["new", "lost", "tour_booked", "leased"],
        "temperature": ["hot", "cold"],
        "property_id": [*map(str, properties), str(properties[0]).upper(), str(uuid.uuid4())],
        "owner_id": [str(org.admin_user_id), str(org.admin_user_id).upper(), "none", str(uuid.uuid4())],
        "source": ["zillow", "Apartments.com", "nowhere", "it's 100%_odd\\"],
        "kind": ["tenant", "owner"],
        "has_next_action_overdue": ["true", "false"],
        # a name (a word, a substring, 1-2 letters), an email, phone prefixes (few and none), no match, a quote
        "q": [
            *("Renter1", "enter", "re", "r", "example.org", "+1512000", "512 000", "(512)", "+1999"),
            *("zq9x", "O'Brien", "  "),
        ],
        "sort": ["created_at", "-created_at", "updated_at", "-updated_at"],
        "limit": ["1", "7", "50", "500"],
        # ISO 8601 as clients write it: Z, an offset, fractions, a date alone, no zone (read as the route does)
        "created_from": ["2026-04-01T00:10:00Z", "2026-04-01T02:15:30.5+02:00", "2026-04-01", "2026-04-01T00:20:00"],
        "created_to": ["2026-04-01T00:25:00Z", "2026-04-01T00:30:00-05:00", "2026-04-02"],
        "updated_from": ["2026-04-02T12:00:00Z", "2026-04-03"],
        "updated_to": ["2026-04-03T06:00:00+00:00", "2026-04-05T00:00:00.000001Z"],
    }


async def test_filtered_lists_equal_the_routes_byte_for_byte(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker, app_state: Any, monkeypatch: Any
) -> None:
    """Random combinations of the filters the fast path reads (each filter's shape compiled once, its values
    parameters, a search's patterns written into the SQL as the route writes them), every page walked by its
    cursor: the same bytes as the route's. And a cursor that is not one: the route's 422."""
    choices = await _filterable_leads(sessionmaker, org)
    assert (await client.get("/v1/leads", headers=org.headers)).status_code == 200  # the key is now cached
    # ~800 requests in a few seconds: more than a key's burst (the limit itself is tests/security's)
    monkeypatch.setattr(app_state.settings, "rate_limit_api_burst", 100_000)
    rng = random.Random(1600)
    asked: list[list[tuple[str, str]]] = [[(name, value)] for name, values in choices.items() for value in values]
    asked += [[("status", "new"), ("status", "lost")], [("status", "lost"), ("q", "Renter"), ("limit", "3")]]
    for _ in range(60):
        names = rng.sample(sorted(choices), rng.randint(2, 5))
        asked.append([(name, rng.choice(choices[name])) for name in names])
    pages = 0
    for params in asked:
        cursor: str | None = None
        for _page in range(60):
            query = [*params, *([("cursor", cursor)] if cursor else [])]
            fast = await client.get("/v1/leads", params=query, headers=org.headers)
            routed = await client.get("/v1/leads", params=[*query, ("via", "route")], headers=org.headers)
            assert fast.status_code == routed.status_code == 200, (query, fast.text)
            assert fast.content == routed.content, query
            pages += 1
            cursor = fast.json()["next_cursor"]
            if cursor is None:
                break
    assert pages > len(asked)  # some answers had further pages, walked by their cursors
    shapes = {name for shape, *_rest in fast_reads._SHAPES for name, _ in shape}
    assert {"status", "source", "owner_id", "unassigned", "search", "contact_ids", "no_contacts"} <= shapes
    sorted_other_way = (await client.get("/v1/leads", params={"limit": "1"}, headers=org.headers)).json()
    for bad in ("x", sorted_other_way["next_cursor"]):
        query = {"cursor": bad, "sort": "updated_at"}
        fast = await client.get("/v1/leads", params=query, headers=org.headers)
        routed = await client.get("/v1/leads", params={**query, "via": "route"}, headers=org.headers)
        assert fast.status_code == routed.status_code == 422
        assert fast.content == routed.content and fast.headers["content-type"] == routed.headers["content-type"]


async def test_a_phone_search_with_too_many_contacts_reads_the_same_leads(
    app_state: Any, org: OrgFixture, sessionmaker: SessionMaker
) -> None:
    """Past PHONE_CANDIDATES contacts a phone search filters by the identity prefix inside the list statement
    (the `phone` shape, not reached by the test data of the HTTP tests): the fast path's compiled shape reads the
    same page as the route's statement."""
    await insert_leads(sessionmaker, org.org_id, 60, with_identities=True)
    for q, cursor_row in (("+1512", None), ("(512) 00", None), ("+1512", 20)):
        f = LeadFilters(q=q)
        terms = filter_terms(f)
        assert [name for name, _ in terms] == ["phone"]
        async with sessionmaker() as session:
            routed = (await session.execute(list_statement(org.org_id, f, 25, None))).mappings().all()
            cursor = next_cursor_for(routed[cursor_row], f.sort) if cursor_row is not None else None
            if cursor is not None:
                routed = (await session.execute(list_statement(org.org_id, f, 25, cursor))).mappings().all()
        parameters = {"org_id": org.org_id, "rows": 26, **term_values(terms), **cursor_values(f.sort, cursor)}
        fast = await on_pool(
            app_state.statement_pool,
            lambda connection, f=f, terms=terms, cursor=cursor, parameters=parameters: fast_reads._list_read(
                f, terms, cursor
            ).fetch(connection, parameters),
        )
        assert routed and [row["id"] for row in fast] == [row["id"] for row in routed], q


async def test_an_agents_reads_equal_the_routes_in_and_out_of_scope(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker, app_state: Any, monkeypatch: Any
) -> None:
    """An agent's key through the fast path: its own leads, a collaborated one, its team's unowned pool, and
    another agent's (404) give the route's bytes, for details, timelines and lists (filtered, searched, paged);
    with `agents_see_all` turned on, the next request already sees everything, as the route does."""
    monkeypatch.setattr(app_state.settings, "rate_limit_api_burst", 100_000)
    amy, bob = await person(client, org, "Amy"), await person(client, org, "Bob")
    mine = await property_with_team(client, org, [(amy, 1)])
    pool = await property_with_team(client, org, [(amy, 1), (bob, 1)], strategy="pool")
    bobs_only = await property_with_team(client, org, [(bob, 1)])
    leads = [await new_lead(client, org, place) for place in (mine, mine, pool, pool, bobs_only, bobs_only)]
    leads.append(await new_lead(client, org, None))
    shared = await client.put(
        f"/v1/leads/{leads[4]}/collaborators", json={"user_ids": [str(amy.id)]}, headers=bob.headers
    )
    assert shared.status_code == 200, shared.text
    lists = [{}, {"limit": "2"}, {"status": "new"}, {"q": "renter"}, {"property_id": str(pool)}, {"owner_id": "none"}]

    async def compare(headers: dict[str, str]) -> list[int]:
        statuses = []
        for path in [*(f"/v1/leads/{lead}" for lead in leads), *(f"/v1/leads/{lead}/timeline" for lead in leads)]:
            fast = await client.get(path, headers=headers)
            routed = await client.get(path, params={"via": "route"}, headers=headers)
            assert (fast.status_code, fast.content) == (routed.status_code, routed.content), path
            assert fast.headers.get("etag") == routed.headers.get("etag"), path
            statuses.append(fast.status_code)
        for params in lists:
            cursor = None
            for _page in range(10):
                query = {**params, **({"cursor": cursor} if cursor else {})}
                fast = await client.get("/v1/leads", params=query, headers=headers)
                routed = await client.get("/v1/leads", params={**query, "via": "route"}, headers=headers)
                assert fast.status_code == 200 and fast.content == routed.content, query
                cursor = fast.json()["next_cursor"]
                if cursor is None:
                    break
        return statuses

    assert (await client.get("/v1/leads", headers=amy.headers)).status_code == 200  # the key is now cached
    scoped = await compare(amy.headers)
    details = scoped[: len(leads)]
    assert details.count(200) >= 4 and details.count(404) >= 1  # some in scope, Bob's own lead not
    widened = await client.patch("/v1/owners/settings", json={"agents_see_all": True}, headers=org.headers)
    assert widened.status_code == 200
    assert set(await compare(amy.headers)) == {200}
    shapes = {key for key in fast_reads._SHAPES if key[-1]}
    assert shapes  # the agent's lists were the fast path's, with the scope


def _odd_query(rng: random.Random, choices: dict[str, list[str]]) -> str:
    """A list query string as a client might send it: real values, values one step off (case, padding, a
    number for a flag, an encoded NUL, too long), blanks, repeats, unknown names, odd encodings."""
    parts = []
    plain = rng.random() < 0.5  # half of them only real values of real names, the other half anything
    for _ in range(rng.randint(1, 4)):
        names = [*choices] if plain else [*choices, "status", "limit", "cursor", "created_from", "Status", "q ", "x"]
        name = rng.choice(names)
        good = choices.get(name, ["1"])
        value = (
            rng.choice(good)
            if plain
            else rng.choice(
                [
                    *good,
                    rng.choice(good).upper(),
                    f" {rng.choice(good)}",
                    "",
                    "1",
                    "0",
                    "True",
                    "%00",
                    "x" * rng.choice([199, 200, 201]),
                    "%E2%82%AC",
                    "%ZZ",
                    "a+b",
                    "none",
                    "9999",
                ]
            )
        )
        parts.append(f"{name}={value}" if rng.random() > 0.05 else name)
    return "&".join(parts)


async def test_odd_list_queries_get_the_routes_answer_whoever_answers(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker, app_state: Any, monkeypatch: Any
) -> None:
    """Seeded random query strings: whatever the fast path takes, its status and bytes are the route's (what it
    does not read exactly as the route would, it hands on, which is the route's answer by definition)."""
    monkeypatch.setattr(app_state.settings, "rate_limit_api_burst", 100_000)
    choices = await _filterable_leads(sessionmaker, org)
    assert (await client.get("/v1/leads", headers=org.headers)).status_code == 200  # the key is now cached
    taken: list[str] = []

    async def counted(connection: Any, values: dict[str, Any]) -> Any:
        taken.append("list")
        return await fast_reads.list_page(connection, values)

    monkeypatch.setitem(fast_reads.ANSWERS, fast_reads.LIST_ROUTE.name, counted)
    rng = random.Random(20261201)
    statuses: set[int] = set()
    for _ in range(300):
        query = _odd_query(rng, choices)
        fast = await client.get(f"/v1/leads?{query}", headers=org.headers)
        routed = await client.get(f"/v1/leads?{query}&via=route", headers=org.headers)
        assert (fast.status_code, fast.content) == (routed.status_code, routed.content), query
        statuses.add(fast.status_code)
    assert {200, 422} <= statuses  # both kinds of answer were met
    assert 30 <= len(taken) < 300, len(taken)  # the fast path answered some, handed the others on


async def test_timeline_types_and_cursors_equal_the_routes(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker, app_state: Any, monkeypatch: Any
) -> None:
    """A timeline filtered by type (one, several, none matching) and walked by its cursors, and a cursor that is
    not one: the route's bytes. For an agent, another agent's lead with a bad cursor is the route's 404 (its
    scope is checked before the cursor), its own lead with one the route's 422."""
    monkeypatch.setattr(app_state.settings, "rate_limit_api_burst", 100_000)
    lead_id = await _long_timeline(sessionmaker, org)
    amy, bob = await person(client, org, "Amy"), await person(client, org, "Bob")
    mine = await property_with_team(client, org, [(amy, 1)])
    amys = await new_lead(client, org, mine)
    assert (await client.get("/v1/leads", headers=org.headers)).status_code == 200  # keys cached
    for headers in (amy.headers, bob.headers):
        assert (await client.get("/v1/leads", headers=headers)).status_code == 200
    taken: list[str] = []

    async def counted(connection: Any, values: dict[str, Any]) -> Any:
        taken.append("timeline")
        return await fast_reads.timeline_page(connection, values)

    monkeypatch.setitem(fast_reads.ANSWERS, fast_reads.TIMELINE_ROUTE.name, counted)
    asked: list[list[tuple[str, str]]] = [
        [],
        [("type", "note")],
        [("type", "note"), ("type", "status_changed"), ("limit", "7")],
        [("type", "tour_scheduled")],
        [("limit", "13")],
    ]
    asked_fast = 0
    for params in asked:
        cursor: str | None = None
        for _page in range(30):
            query = [*params, *([("cursor", cursor)] if cursor else [])]
            path = f"/v1/leads/{lead_id}/timeline"
            fast = await client.get(path, params=query, headers=org.headers)
            asked_fast += 1
            routed = await client.get(path, params=[*query, ("via", "route")], headers=org.headers)
            assert (fast.status_code, fast.content) == (routed.status_code, routed.content), query
            cursor = fast.json()["next_cursor"]
            if cursor is None:
                break
    for headers, target, status in (
        (org.headers, lead_id, 422),
        (org.headers, uuid.uuid4(), 422),
        (amy.headers, amys, 422),
        (bob.headers, amys, 404),
    ):
        path = f"/v1/leads/{target}/timeline"
        fast = await client.get(path, params={"cursor": "x"}, headers=headers)
        asked_fast += 1
        routed = await client.get(path, params={"cursor": "x", "via": "route"}, headers=headers)
        assert fast.status_code == routed.status_code == status, (path, fast.text)
        assert fast.content == routed.content
    assert len(taken) == asked_fast  # every request above without `via` was the fast path's
