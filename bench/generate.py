"""The read dataset: organizations, users, properties, contacts, identities, leads and events, by COPY.

Distributions are skewed the way a real portfolio is: a few ILS sources bring most leads, a few properties
and agents carry most of the volume, names follow a long tail, volume grows over two years with a summer
peak and weekday office hours, old leads are mostly lost or nurtured while recent ones are new, and a lead's
timeline is short for most and long for a few. The dataset is kept in `guestcard_bench` and reused while
its size and GENERATOR_VERSION match (a bench_dataset row records what was built).

    python -m bench.generate --mode quick     # build (or confirm) the dataset only
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import itertools
import json
import random
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg

from bench.env import BENCH_DB, Servers, asyncpg_dsn, create_database, drop_database, start_servers
from bench.harness import console

GENERATOR_VERSION = 4  # 2: contacts.search_text (migration 0003); 3: funnel ranks, status moves, reply split, rollups;
# 4: agents on property teams (their pools)
SEED = 20261122


@dataclass(frozen=True)
class Size:
    leads: int
    events: int
    properties: int
    agents: int
    small_contacts: int = 10_000


SIZES = {
    "tiny": Size(leads=5_000, events=25_000, properties=8, agents=4),
    "quick": Size(leads=50_000, events=250_000, properties=24, agents=12),
    "full": Size(leads=1_000_000, events=5_000_000, properties=120, agents=60),
}


def _words(text: str) -> list[str]:
    return text.split()


SOURCES = {
    "zillow": 28, "apartments_com": 18, "website": 14, "phone": 9, "zumper": 6, "rent_com": 6,
    "apartment_list": 5, "facebook": 4, "craigslist": 3, "hotpads": 2, "walk_in": 2, "referral": 2, "sms": 1,
}  # fmt: skip
FIRST_TOUCH = {"phone": "missed_call", "sms": "sms_in", "walk_in": "inquiry", "website": "tour_request"}
CHANNEL = {"phone": "phone", "sms": "sms", "walk_in": "walk_in", "website": "web", "facebook": "web"}
FIRST_NAMES = _words(
    "James Mary Michael Patricia John Jennifer Robert Linda David Elizabeth William Barbara Richard Susan Joseph "
    "Jessica Thomas Sarah Christopher Karen Charles Lisa Daniel Nancy Matthew Betty Anthony Sandra Mark Margaret "
    "Donald Ashley Steven Kimberly Andrew Emily Paul Donna Joshua Michelle Kenneth Carol Kevin Amanda Brian Melissa "
    "George Deborah Timothy Stephanie Ronald Rebecca Jason Sharon Edward Laura Jeffrey Cynthia Ryan Dorothy Jacob "
    "Amy Gary Kathleen Nicholas Angela Eric Shirley Jonathan Emma Stephen Brenda Larry Pamela Justin Nicole Scott "
    "Anna Brandon Samantha Benjamin Katherine Samuel Christine Gregory Debra Alexander Rachel Patrick Carolyn Frank "
    "Janet Raymond Maria Jack Olivia Dennis Heather Jerry Helen Tyler Catherine Aaron Diane Jose Julie Adam Victoria "
    "Nathan Joyce Henry Lauren Zachary Kelly Douglas Christina Peter Ruth Kyle Joan Noah Virginia Ethan Judith "
    "Jeremy Evelyn Christian Hannah Walter Andrea Keith Megan Austin Cheryl Roger Jacqueline Terry Madison Sean "
    "Teresa Gerald Abigail Carl Sophia Dylan Martha Harold Sara Jordan Gloria Jesse Janice Bryan Kathryn Lawrence "
    "Ann Arthur Isabella Gabriel Judy Bruce Charlotte Logan Julia Billy Grace Joe Amber Alan Alice Juan Jean Elijah "
    "Denise Willie Frances Albert Danielle Wayne Marilyn Randy Natalie Mason Beverly Vincent Diana Liam Brittany "
    "Roy Theresa Bobby Kayla Caleb Alexis Bradley Doris Russell Lori Lucas Tiffany Wei Priya Mohammed Aisha Hiroshi "
    "Yuki Carlos Sofia Diego Valentina Mateo Camila Luis Ximena Omar Fatima Ivan Olga Chen Mei Ravi Ananya"
)
LAST_NAMES = _words(
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez Gonzalez Wilson "
    "Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris Sanchez Clark Ramirez Lewis "
    "Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill Flores Green Adams Nelson Baker Hall Rivera "
    "Campbell Mitchell Carter Roberts Gomez Phillips Evans Turner Diaz Parker Cruz Edwards Collins Reyes Stewart "
    "Morris Morales Murphy Cook Rogers Gutierrez Ortiz Morgan Cooper Peterson Bailey Reed Kelly Howard Ramos Kim "
    "Cox Ward Richardson Watson Brooks Chavez Wood James Bennett Gray Mendoza Ruiz Hughes Price Alvarez Castillo "
    "Sanders Patel Myers Long Ross Foster Jimenez Powell Jenkins Perry Russell Sullivan Bell Coleman Butler "
    "Henderson Barnes Gonzales Fisher Vasquez Simmons Romero Jordan Patterson Alexander Hamilton Graham Reynolds "
    "Griffin Wallace Moreno West Cole Hayes Bryant Herrera Gibson Ellis Tran Medina Aguilar Stevens Murray Ford "
    "Castro Marshall Owens Harrison Fernandez McDonald Woods Washington Kennedy Wells Vargas Henry Chen Freeman "
    "Webb Tucker Guzman Burns Crawford Olson Simpson Porter Hunter Gordon Mendez Silva Shaw Snyder Mason Dixon "
    "Munoz Hunt Hicks Holmes Palmer Wagner Black Robertson Boyd Rose Stone Salazar Fox Warren Mills Meyer Rice "
    "Schmidt Garza Daniels Ferguson Nichols Stephens Soto Weaver Ryan Gardner Payne Grant Dunn Kelley Spencer "
    "Hawkins Arnold Pierce Vazquez Hansen Peters Santos Hart Bradley Knight Elliott Cunningham Duncan Armstrong "
    "Hudson Carroll Lane Riley Andrews Alvarado Ray Delgado Berry Perkins Hoffman Johnston Matthews Pena Richards "
    "Contreras Willis Carpenter Lawrence Sandoval Guerrero George Chapman Rios Estrada Ortega Watkins Greene "
    "Nunez Wheeler Valdez Harper Burke Larson Santiago Maldonado Morrison Franklin Carlson Austin Dominguez "
    "Carr Lawson Jacobs Obrien Lynch Singh Vega Bishop Montgomery Oliver Jensen Harvey Williamson Gilbert Dean "
    "Sims Espinoza Howell Li Wong Reid Hanson Le McCoy Garrett Burton Fuller Wang Weber Welch Rojas Lucas Marquez "
    "Fields Park Yang Little Banks Padilla Day Walsh Bowman Schultz Luna Fowler Mejia Davidson Acosta Brewer"
)
EMAIL_DOMAINS = {"gmail.com": 55, "yahoo.com": 14, "outlook.com": 8, "hotmail.com": 8, "icloud.com": 9, "aol.com": 2}
AREA_CODES = [212, 310, 415, 512, 617, 703, 206, 305, 404, 312, 602, 702, 720, 713, 214, 503, 615, 704, 919, 813]
# status mix by lead age: recent leads are worked, old ones are closed or nurtured
STATUS_BY_AGE = [
    (3, {"new": 55, "contacted": 30, "qualified": 6, "tour_requested": 6, "tour_booked": 3}),
    (30, {"new": 8, "contacted": 30, "qualified": 12, "tour_requested": 8, "tour_booked": 9, "toured": 8,
          "application_started": 5, "application_submitted": 3, "leased": 2, "nurture": 5, "lost": 10}),
    (10_000, {"new": 1, "contacted": 6, "qualified": 3, "tour_booked": 1, "toured": 3, "application_submitted": 1,
              "leased": 7, "nurture": 18, "lost": 60}),
]  # fmt: skip
NEXT_ACTION = {
    "new": "text_back", "contacted": "call", "qualified": "schedule_tour", "tour_requested": "schedule_tour",
    "tour_booked": "confirm_tour", "toured": "application_reminder", "application_started": "application_reminder",
    "nurture": "nurture",
}  # fmt: skip
LOST_REASONS = {"unresponsive": 45, "rented_elsewhere": 20, "price": 12, "timing": 8, "location": 5, "spam": 4,
                "not_qualified": 3, "no_availability": 3}  # fmt: skip
EXTRA_EVENTS = {
    "sms_out": 20, "email_out": 18, "status_changed": 18, "reply": 8, "note": 8, "call": 7, "sms_in": 6,
    "email_in": 6, "task_created": 4, "tour_scheduled": 3, "owner_changed": 2,
}  # fmt: skip
NOTES = [
    "Asked about parking and pet rent.",
    "Wants a 2 bed on a high floor, flexible on move-in.",
    "Left voicemail, will try again tomorrow.",
    "Prefers texts after 5pm.",
    "Comparing with two other communities nearby.",
]


class Picker:
    """Weighted choice by bisect over cumulative weights: fast and reproducible under one Random."""

    def __init__(self, rng: random.Random, weights: dict[Any, float] | list[tuple[Any, float]]) -> None:
        items = list(weights.items()) if isinstance(weights, dict) else list(weights)
        self.values = [value for value, _ in items]
        self.cumulative = list(itertools.accumulate(weight for _, weight in items))
        self.total = self.cumulative[-1]
        self.rng = rng

    def __call__(self) -> Any:
        return self.values[bisect.bisect_right(self.cumulative, self.rng.random() * self.total)]


def zipf(values: list[Any], s: float = 1.1) -> list[tuple[Any, float]]:
    return [(value, 1.0 / (rank + 1) ** s) for rank, value in enumerate(values)]


def new_id(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


async def fetch_meta(connection: asyncpg.Connection) -> dict[str, Any] | None:
    exists = await connection.fetchval("SELECT to_regclass('bench_dataset') IS NOT NULL")
    if not exists:
        return None
    raw = await connection.fetchval("SELECT meta FROM bench_dataset WHERE name = 'dataset'")
    return json.loads(raw) if raw else None


async def ensure_dataset(servers: Servers, mode: str, force: bool = False) -> dict[str, Any]:
    """The dataset of this size in guestcard_bench: reused if it matches, else rebuilt from scratch."""
    size = SIZES[mode]
    wanted = {"version": GENERATOR_VERSION, "leads": size.leads, "events": size.events, "seed": SEED}
    url = await create_database(servers, BENCH_DB)
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        meta = await fetch_meta(connection)
    finally:
        await connection.close()
    if meta and not force and all(meta.get(key) == value for key, value in wanted.items()):
        console.print(f"dataset: reusing {size.leads:,} leads / {meta['events_actual']:,} events in {BENCH_DB}")
        meta["url"] = url
        return meta
    console.print(f"dataset: building {size.leads:,} leads / ~{size.events:,} events in {BENCH_DB} …")
    await drop_database(servers, BENCH_DB)
    url = await create_database(servers, BENCH_DB)
    started = time.perf_counter()
    meta = await build(url, size)
    meta.update(wanted, seconds=round(time.perf_counter() - started, 1))
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await connection.execute("CREATE TABLE bench_dataset (name text PRIMARY KEY, meta jsonb NOT NULL)")
        await connection.execute("INSERT INTO bench_dataset VALUES ('dataset', $1::jsonb)", json.dumps(meta))
    finally:
        await connection.close()
    console.print(f"dataset: built in {meta['seconds']:.0f} s")
    meta["url"] = url
    return meta


async def create_org(url: str, name: str) -> dict[str, str]:
    """Through guestcard's own bootstrap, so keys and the admin user are exactly what the API expects."""
    from services.api.auth.service import create_organization
    from shared.db import make_engine, make_sessionmaker, transaction

    engine = make_engine(url, pool_size=1)
    try:
        async with transaction(make_sessionmaker(engine)) as session:
            created = await create_organization(session, name)
            return {
                "org_id": str(created.org.id),
                "api_key": created.api_key,
                "intake_key": created.intake_key,
                "admin_user_id": str(created.admin.id),
            }
    finally:
        await engine.dispose()


SECONDARY_INDEX_TABLES = ("contacts", "contact_identities", "leads", "lead_events")


async def drop_secondary_indexes(connection: asyncpg.Connection) -> list[str]:
    """Indexes that back no constraint are rebuilt after the load: one sort beats millions of inserts."""
    rows = await connection.fetch(
        """
        SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS definition
        FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid
        WHERE t.relname = ANY($1::text[]) AND t.relnamespace = 'public'::regnamespace
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
        """,
        list(SECONDARY_INDEX_TABLES),
    )
    for row in rows:
        await connection.execute(f"DROP INDEX {row['name']}")
    return [row["definition"] for row in rows]


# contacts.search_text as migration 0003's triggers would have written it (they do not fire in replica mode,
# and per-row triggers without the dropped indexes would be slow anyway): one set-based pass after the load
SEARCH_TEXT_FILL = """
UPDATE contacts AS c SET search_text = contact_search_text(c.full_name, c.first_name, c.last_name, i.values)
FROM (
    SELECT c2.id, array_remove(array_agg(ci.value), NULL) AS values
    FROM contacts AS c2 LEFT JOIN contact_identities AS ci ON ci.contact_id = c2.id
    GROUP BY c2.id
) AS i
WHERE i.id = c.id
"""


# leads.search_text (migration r16) is the contact's, copied; VACUUM FULL drops the old row versions the
# update left behind (the secondary indexes are not there yet, so the rewrite is cheap)
LEAD_SEARCH_TEXT_FILL = """
UPDATE leads AS l SET search_text = lead_search_text(c.search_text) FROM contacts AS c
WHERE c.id = l.contact_id
"""


async def fill_search_text(connection: asyncpg.Connection) -> None:
    if not await connection.fetchval("SELECT to_regproc('contact_search_text') IS NOT NULL"):
        return  # a schema before migration 0003
    started = time.perf_counter()
    await connection.execute(SEARCH_TEXT_FILL)
    console.print(f"  contacts.search_text filled in {time.perf_counter() - started:.0f} s")
    if await connection.fetchval("SELECT to_regproc('leads_search_text_row') IS NOT NULL"):
        started = time.perf_counter()
        await connection.execute(LEAD_SEARCH_TEXT_FILL)
        await connection.execute("VACUUM FULL leads")
        console.print(f"  leads.search_text filled in {time.perf_counter() - started:.0f} s")


async def build(url: str, size: Size) -> dict[str, Any]:
    main = await create_org(url, "Bench Main Org")
    small = await create_org(url, "Bench Small Org")
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        superuser = await connection.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        if superuser:  # FK checks per row would double the load time; the generator keeps references valid
            await connection.execute("SET session_replication_role = replica")
        await connection.execute("SET maintenance_work_mem = '256MB'")
        await connection.execute("SET synchronous_commit = off")
        definitions = await drop_secondary_indexes(connection)
        counts = await load_org(connection, uuid.UUID(main["org_id"]), size, random.Random(SEED))
        small_size = Size(leads=size.small_contacts, events=size.small_contacts * 3, properties=4, agents=2)
        small_counts = await load_org(connection, uuid.UUID(small["org_id"]), small_size, random.Random(SEED + 1))
        await fill_search_text(connection)
        # the rollups join leads and their events without the secondary indexes: planned on fresh tables without
        # statistics, that join once ran as a nested loop over both (minutes at 50 k leads)
        await connection.execute("ANALYZE leads, lead_events, properties, organizations")
        await fill_metric_rollups(connection)
        started = time.perf_counter()
        for definition in definitions:
            await connection.execute(definition)
        console.print(f"  indexes rebuilt in {time.perf_counter() - started:.0f} s")
        started = time.perf_counter()
        await connection.execute("VACUUM (ANALYZE) contacts, contact_identities, leads, lead_events")
        await connection.execute("ANALYZE")  # the small tables and the rollups too (autovacuum may be off)
        console.print(f"  vacuum analyze in {time.perf_counter() - started:.0f} s")
    finally:
        await connection.close()
    return {
        "orgs": {"main": main, "small": small},
        "counts": {"main": counts, "small": small_counts},
        "events_actual": counts["lead_events"],
        "built_at": datetime.now(UTC).isoformat(),
    }


RANK = {status: rank for rank, status in enumerate(
    ("new", "contacted", "qualified", "tour_requested", "tour_booked", "toured", "application_started",
     "application_submitted", "leased"))}  # fmt: skip


async def fill_metric_rollups(connection: asyncpg.Connection) -> None:
    """The metrics rollups as the triggers and the fold would have kept them (triggers do not fire in replica
    mode): `guestcard metrics rebuild`'s statements, per organization."""
    if not await connection.fetchval("SELECT to_regproc('metric_recompute') IS NOT NULL"):
        return
    started = time.perf_counter()
    from services.api.metrics.rollups import COLUMNS, REBUILD_SQL

    if not await connection.fetchval("SELECT to_regproc('metric_recompute_base') IS NOT NULL"):  # before m17c
        await connection.execute(
            f"INSERT INTO metric_counts ({COLUMNS}) SELECT r.* FROM organizations o "
            "CROSS JOIN LATERAL metric_recompute(o.id) r"
        )
    else:
        for org_id in await connection.fetch("SELECT id FROM organizations"):
            async with connection.transaction():
                for statement in REBUILD_SQL:
                    args = [org_id["id"]] if ":org" in statement else []
                    await connection.execute(statement.replace(":org", "$1::uuid"), *args)
    console.print(f"  metric rollups built in {time.perf_counter() - started:.0f} s")


def week_weights(weeks: int) -> list[tuple[int, float]]:
    """Two years of volume: growing ~40 %/year, a summer peak (leasing season) and a December trough."""
    import math

    out = []
    for week in range(weeks):  # week 0 = the most recent
        age_years = week / 52
        season = 1 + 0.35 * math.cos(2 * math.pi * ((52 - week) % 52 - 26) / 52)
        out.append((week, (1.4 ** (-age_years)) * season))
    return out


HOUR_WEIGHTS = [(h, w) for h, w in enumerate([1, 1, 1, 1, 1, 2, 3, 5, 8, 10, 11, 11, 10, 10, 10, 9, 9, 9, 8, 7,
                                               6, 5, 3, 2])]  # fmt: skip
DAY_WEIGHTS = [(0, 10), (1, 9), (2, 9), (3, 9), (4, 8), (5, 6), (6, 5)]


async def load_org(connection: asyncpg.Connection, org_id: uuid.UUID, size: Size, rng: random.Random) -> dict[str, int]:
    now = datetime.now(UTC).replace(microsecond=0)
    started = time.perf_counter()
    users = [
        (new_id(rng), org_id, f"agent{i}@bench.example", f"Agent {i}", "agent" if i else "manager", True, now, now)
        for i in range(size.agents)
    ]
    await connection.copy_records_to_table(
        "users",
        records=users,
        columns=["id", "org_id", "email", "name", "role", "is_active", "created_at", "updated_at"],
    )
    properties = [
        (new_id(rng), org_id, f"Bench Residences {i}", f"{100 + i} Main St", "Austin", "TX", "78701", "US",
         "America/Chicago", [f"+1512555{i:04d}"], [f"L{i:06d}"], f"p{i}@in.bench.example", False, now, now)
        for i in range(size.properties)
    ]  # fmt: skip
    await connection.copy_records_to_table(
        "properties",
        records=properties,
        columns=["id", "org_id", "name", "address_line1", "city", "state", "postal_code", "country", "timezone",
                 "phone_numbers", "listing_ids", "inbound_alias", "is_archived", "created_at", "updated_at"],
    )  # fmt: skip
    pick_property = Picker(rng, zipf(list(range(size.properties)), 0.9))
    pick_owner = Picker(rng, [*zipf([u[0] for u in users], 0.7), (None, 0.25)])
    pick_source = Picker(rng, SOURCES)
    pick_first = Picker(rng, zipf(FIRST_NAMES, 0.6))
    pick_last = Picker(rng, zipf(LAST_NAMES, 0.8))
    pick_domain = Picker(rng, EMAIL_DOMAINS)
    pick_week = Picker(rng, week_weights(104))
    pick_day = Picker(rng, DAY_WEIGHTS)
    pick_hour = Picker(rng, HOUR_WEIGHTS)
    pick_status = [(days, Picker(rng, weights)) for days, weights in STATUS_BY_AGE]
    pick_lost = Picker(rng, LOST_REASONS)
    pick_extra = Picker(rng, EXTRA_EVENTS)
    notes = [json.dumps({"body": note}) for note in NOTES]
    empty = "{}"
    extra_per_lead = max(0.0, size.events / size.leads - 3)  # created + first touch + next action are fixed
    geometric_p = 1 / (1 + extra_per_lead)

    contact_cols = ["id", "org_id", "kind", "full_name", "first_name", "last_name", "primary_email",
                    "primary_phone", "sms_consent", "email_consent", "created_at", "updated_at"]  # fmt: skip
    identity_cols = ["id", "org_id", "contact_id", "kind", "value", "source", "created_at", "updated_at"]
    lead_cols = ["id", "org_id", "contact_id", "property_id", "kind", "status", "temperature", "owner_id", "source",
                 "sub_source", "latest_source", "move_in_date", "bedrooms", "budget_min", "budget_max", "pets",
                 "unit_type", "next_action_type", "next_action_due_at", "next_action_owner_id", "first_response_at",
                 "first_response_seconds", "last_touch_at", "lost_reason", "closed_at", "created_at", "updated_at",
                 "version", "reached_rank", "first_automated_response_at", "first_human_response_at"]  # fmt: skip
    event_cols = ["id", "org_id", "lead_id", "contact_id", "type", "occurred_at", "recorded_at", "actor_type",
                  "actor_id", "source", "channel", "property_id", "data"]  # fmt: skip
    counts = {"contacts": 0, "contact_identities": 0, "leads": 0, "lead_events": 0}
    contact_ids: list[uuid.UUID] = []
    lead_property: list[int] = []
    reused: set[int] = set()
    batch = 20_000
    for start in range(0, size.leads, batch):
        contacts, identities, leads, events = [], [], [], []
        for i in range(start, min(start + batch, size.leads)):
            created = now - timedelta(
                weeks=pick_week(), days=pick_day(), hours=pick_hour() - now.hour, minutes=rng.randrange(60)
            )
            created = min(created, now - timedelta(minutes=rng.randrange(1, 600)))
            first, last = pick_first(), pick_last()
            contact_id = new_id(rng)
            contact_ids.append(contact_id)
            email = f"{first.lower()}.{last.lower()}{i}@{pick_domain()}" if rng.random() < 0.88 else None
            phone = f"+1{rng.choice(AREA_CODES)}{2_000_000 + i}" if (email is None or rng.random() < 0.72) else None
            source = pick_source()
            consent = "opted_in" if phone and rng.random() < 0.3 else "unknown"
            contacts.append((contact_id, org_id, "tenant", f"{first} {last}", first, last, email, phone, consent,
                             "unknown", created, created))  # fmt: skip
            if email:
                identities.append((new_id(rng), org_id, contact_id, "email", email, source, created, created))
            if phone:
                identities.append((new_id(rng), org_id, contact_id, "phone", phone, source, created, created))
            prop = pick_property()
            # ~6 % of leads are a known renter's pursuit of another property (that contact's slot stays leadless)
            back = i - rng.randrange(1, 2_000)
            if rng.random() < 0.06 and back >= 0 and back not in reused:
                reused.add(back)
                contact_id = contact_ids[back]
                if prop == lead_property[back]:
                    prop = (prop + 1) % size.properties
            lead_property.append(prop)
            property_id = properties[prop][0]
            age_days = (now - created).days
            status = next(picker for days, picker in pick_status if age_days < days)()
            owner = pick_owner() if status != "new" or rng.random() < 0.5 else None
            action = NEXT_ACTION.get(status)
            responded = status != "new" and rng.random() < 0.9
            response_seconds = int(rng.expovariate(1 / 900)) + 20 if responded else None
            closed = created + timedelta(days=rng.randrange(1, 60)) if status in ("lost", "leased") else None
            updated = min(now, closed or created + timedelta(hours=rng.randrange(1, 24 * 14)))
            bedrooms = rng.choice((0, 1, 1, 1, 2, 2, 2, 3, None, None))
            budget = rng.randrange(900, 3_200, 50) if rng.random() < 0.6 else None
            lead_id = new_id(rng)
            leads.append((
                lead_id, org_id, contact_id, property_id, "tenant", status, "cold" if status == "lost" else "hot",
                owner, source, None, source, date.fromordinal(created.toordinal() + rng.randrange(7, 90))
                if rng.random() < 0.5 else None, bedrooms, budget, budget + 300 if budget else None,
                rng.random() < 0.4 if rng.random() < 0.5 else None, None, action,
                updated + timedelta(hours=rng.choice((1, 4, 24, 72))) if action else None, owner if action else None,
                created + timedelta(seconds=response_seconds) if response_seconds else None, response_seconds,
                updated, pick_lost() if status == "lost" else None, closed, created, updated, 1,
                RANK.get(status, rng.randrange(0, 6)),  # lost / nurture: how far it got before
                created + timedelta(seconds=rng.randrange(3, 90)) if responded and rng.random() < 0.7 else None,
                created + timedelta(seconds=response_seconds) if response_seconds and rng.random() < 0.8 else None,
            ))  # fmt: skip
            moved = json.dumps({"from": "new", "to": status})
            channel = CHANNEL.get(source, "email" if source not in ("phone", "sms") else source)
            events.append((new_id(rng), org_id, lead_id, contact_id, "created", created, created, "system", None,
                           source, channel, property_id, empty))  # fmt: skip
            events.append((new_id(rng), org_id, lead_id, contact_id, FIRST_TOUCH.get(source, "inquiry"), created,
                           created, "renter", None, source, channel, property_id, empty))  # fmt: skip
            events.append((new_id(rng), org_id, lead_id, contact_id, "next_action_set", created, created, "system",
                           None, None, None, property_id, '{"type": "text_back"}'))  # fmt: skip
            at = created
            extra = 0
            while rng.random() > geometric_p and extra < 200:
                extra += 1
                at = min(now, at + timedelta(minutes=int(rng.expovariate(1 / 600)) + 1))
                kind = pick_extra()
                actor = "renter" if kind in ("reply", "sms_in", "email_in") else "user"
                data = rng.choice(notes) if kind == "note" else moved if kind == "status_changed" else empty
                events.append((new_id(rng), org_id, lead_id, contact_id, kind, at, at, actor, owner, None,
                               None, property_id, data))  # fmt: skip
        await connection.copy_records_to_table("contacts", records=contacts, columns=contact_cols)
        await connection.copy_records_to_table("contact_identities", records=identities, columns=identity_cols)
        await connection.copy_records_to_table("leads", records=leads, columns=lead_cols)
        await connection.copy_records_to_table("lead_events", records=events, columns=event_cols)
        counts["contacts"] += len(contacts)
        counts["contact_identities"] += len(identities)
        counts["leads"] += len(leads)
        counts["lead_events"] += len(events)
    # every agent on the leasing team of two properties (its pool: their unowned leads); drawn apart from the
    # rest, so the leads and events are those of version 3
    team_rng = random.Random(SEED + 4)
    team = [
        (new_id(team_rng), org_id, properties[index][0], user[0], 1, now, now)
        for user in users[1:]
        for index in team_rng.sample(range(size.properties), min(2, size.properties))
    ]
    await connection.copy_records_to_table(
        "property_team_members",
        records=team,
        columns=["id", "org_id", "property_id", "user_id", "weight", "created_at", "updated_at"],
    )
    counts["property_team_members"] = len(team)
    elapsed = time.perf_counter() - started
    console.print(
        f"  org {org_id}: {counts['leads']:,} leads, {counts['lead_events']:,} events in {elapsed:.0f} s "
        f"({sum(counts.values()) / elapsed:,.0f} rows/s)"
    )
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=sorted(SIZES), default="quick")
    parser.add_argument("--force", action="store_true", help="rebuild even if a matching dataset exists")
    args = parser.parse_args()
    servers = start_servers()
    try:
        meta = asyncio.run(ensure_dataset(servers, args.mode, args.force))
        console.print(json.dumps(meta["counts"]))
    finally:
        servers.stop()


if __name__ == "__main__":
    main()
