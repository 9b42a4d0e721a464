"""Write-side load shared by the intake and speed-to-lead scenarios: payloads, the HTTP sender, the raw floor.

The floor is the physical limit for the work, not for guestcard's shape (issue #16): raw asyncpg writing the
rows a lead needs (the inbound row, contact, 2 identities, lead and one event) in ONE transaction per lead.
A floor that replayed guestcard's own rows and transaction count would grade the shape against itself; the
rows and transactions guestcard actually spent are still counted and reported beside it.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx

from bench import http

# rows guestcard writes per lead (besides the inbound row) before the first guestcard round measured them
DEFAULT_PROFILE = {"contacts": 1.0, "contact_identities": 2.0, "leads": 1.0, "lead_events": 3.0,
                   "signal_applications": 1.0, "tasks": 0.0}  # fmt: skip
DEFAULT_WRITE_TX = 4  # inbox insert; worker claims the row; signal applied; row marked processed
# what a lead physically needs: the floor writes exactly this, in one transaction
FLOOR_PROFILE = {"contacts": 1.0, "contact_identities": 2.0, "leads": 1.0, "lead_events": 1.0,
                 "signal_applications": 0.0, "tasks": 0.0}  # fmt: skip
FLOOR_WRITE_TX = 1
EVENT_TYPES = ("created", "tour_request", "next_action_set")
PROFILE_TABLES = [*DEFAULT_PROFILE, "inbound_messages", "review_items"]


def web_form(serial: int, run: str) -> dict[str, Any]:
    """A tour request from the website: unique person, unique submission."""
    rng = random.Random(serial)
    first = rng.choice(["Ana", "Ben", "Chloe", "Dmitri", "Esther", "Farid", "Grace", "Hugo", "Ines", "Jamal"])
    last = rng.choice(["Okafor", "Lindqvist", "Moreau", "Tanaka", "Silva", "Novak", "Haddad", "Kowalski"])
    return {
        "first_name": first,
        "last_name": last,
        "email": f"{first.lower()}.{last.lower()}.{run}.{serial}@example.com",
        "phone": f"+1415{3_000_000 + serial % 7_000_000:07d}",
        "message": "Hi! Is the 2 bedroom still available? We would like to tour this weekend, we have a cat.",
        "form_type": "tour",
        "submission_id": f"{run}-{serial}",
    }


JSON_HEADERS = {"content-type": "application/json"}
TWILIO_TOKEN = "bench-twilio-auth-token"  # a throwaway secret of a local benchmark


@dataclass(frozen=True)
class Delivery:
    """One webhook as a sender would POST it: the kind in the URL, the raw body, its headers."""

    kind: str
    body: bytes
    headers: dict[str, str]
    key: str  # the sender's id of this delivery (submission id, MessageSid, Message-ID)


def web_form_delivery(serial: int, run: str, base_url: str = "", path: str = "") -> Delivery:
    body = web_form(serial, run)
    return Delivery("web-form", json.dumps(body).encode(), {"content-type": "application/json"}, body["submission_id"])


def twilio_sms_delivery(serial: int, run: str, base_url: str, path: str) -> Delivery:
    """An inbound SMS from a new renter, signed with the organization's Twilio token as Twilio does."""
    from urllib.parse import urlencode

    from services.api.intake.signatures import twilio_signature

    sid = f"SM{uuid.uuid5(uuid.NAMESPACE_URL, f'{run}-{serial}').hex}"
    params = {
        "MessageSid": sid,
        "AccountSid": "AC" + "0" * 32,
        "From": f"+1737{4_000_000 + serial % 5_000_000:07d}",
        "To": "+15125550100",
        "Body": "Hi, is the 1 bedroom still available? Can I see it Saturday?",
        "NumMedia": "0",
    }
    signature = twilio_signature(base_url + path, params, TWILIO_TOKEN)
    headers = {"content-type": "application/x-www-form-urlencoded", "x-twilio-signature": signature}
    return Delivery("twilio/sms", urlencode(params).encode(), headers, sid)


def ils_email_delivery(serial: int, run: str, base_url: str = "", path: str = "") -> Delivery:
    """A raw Apartments.com guest card email (RFC 822, as an inbound-mail relay posts it)."""
    rng = random.Random(serial)
    first = rng.choice(["Isabel", "Omar", "Priya", "Tomas", "Wen", "Yara"])
    last = rng.choice(["Ruiz", "Khan", "Patel", "Berg", "Li", "Haddad"])
    email = f"{first.lower()}.{last.lower()}.{run}.{serial}@example.com"
    phone = f"(312) {600 + serial % 300:03d}-{serial % 10_000:04d}"
    message_id = f"<aptcom-{run}-{serial}@apartments.com>"
    boundary = "===============1742416516561362870=="
    text = (
        f'Content-Type: multipart/alternative;\r\n boundary="{boundary}"\r\nMIME-Version: 1.0\r\n'
        f"From: Apartments.com <lead@apartments.com>\r\nReply-To: {email}\r\n"
        f"To: leasing@inbound.guestcard.test\r\nSubject: New Lead from {first} {last}\r\n"
        f"Date: Sat, 20 Sep 2025 10:58:00 -0400\r\nMessage-ID: {message_id}\r\n\r\n"
        f'--{boundary}\r\nContent-Type: text/plain; charset="utf-8"\r\nMIME-Version: 1.0\r\n\r\n'
        f"New Lead from {first} {last} *\r\nName: {first} {last}\r\nEmail: {email}\r\nPhone: {phone}\r\n"
        "Beds/Baths: 2/1\r\nMove Date: 11/15/2025\r\n"
        "Comments: Hello, I'd like to schedule a tour of a 2 bedroom unit.\r\n\r\n"
        f"--{boundary}--\r\n"
    )
    return Delivery("email", text.encode(), {"content-type": "message/rfc822"}, message_id)


MIX = (web_form_delivery, twilio_sms_delivery, ils_email_delivery)


def mixed_delivery(serial: int, run: str, base_url: str, path: str) -> Delivery:
    """Web form, Twilio SMS and raw ILS email in turn (`path` holds `{kind}`)."""
    make = MIX[serial % len(MIX)]
    kind = {web_form_delivery: "web-form", twilio_sms_delivery: "twilio/sms", ils_email_delivery: "email"}[make]
    return make(serial, run, base_url, path.replace("{kind}", kind))


async def set_twilio_token(base_url: str, api_key: str) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        response = await client.put(
            "/v1/integrations/twilio",
            json={"signing_secret": TWILIO_TOKEN},
            headers={"Authorization": f"Bearer {api_key}"},
        )
        response.raise_for_status()


async def create_org(database_url: str, name: str) -> dict[str, Any]:
    from bench.generate import create_org as bootstrap

    return await bootstrap(database_url, name)


@dataclass
class Sent:
    status: int
    inbound_id: str | None
    at: float  # perf_counter when the 2xx arrived


@dataclass
class Sender:
    """POSTs webhooks to one guestcard API on 127.0.0.1 with bounded concurrency."""

    base_url: str
    path: str
    concurrency: int = 32
    errors: list[str] = field(default_factory=list)

    async def __aenter__(self) -> Sender:
        # bench/http.py, not httpx: httpx's ~2.6 ms of CPU per request was taken from the stack under test
        self.client = http.Client(self.base_url, connections=self.concurrency, timeout=30.0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()

    async def send(self, body: dict[str, Any] | Delivery) -> Sent:
        try:
            if isinstance(body, Delivery):
                url = self.path.replace("{kind}", body.kind)
                response = await self.client.post(url, body.body, body.headers)
            else:
                response = await self.client.post(self.path, json.dumps(body).encode(), JSON_HEADERS)
        except (OSError, TimeoutError) as error:
            self.errors.append(type(error).__name__)
            return Sent(0, None, time.perf_counter())
        at = time.perf_counter()
        if response.status >= 300:
            self.errors.append(f"{response.status}: {response.text[:200]}")
            return Sent(response.status, None, at)
        return Sent(response.status, response.headers.get("x-inbound-id"), at)


async def current_xid(connection: asyncpg.Connection) -> int:
    """The next transaction id (read without consuming one): the difference counts write transactions."""
    return int(await connection.fetchval("SELECT txid_snapshot_xmax(txid_current_snapshot())"))


async def row_profile(connection: asyncpg.Connection, org_id: uuid.UUID, leads: int) -> dict[str, float]:
    profile = {}
    for table in PROFILE_TABLES:
        count = await connection.fetchval(f"SELECT count(*) FROM {table} WHERE org_id = $1", org_id)
        profile[table] = round(count / max(1, leads), 2)
    return profile


@dataclass
class Floor:
    """Raw asyncpg doing one lead's database work: guestcard's rows, in guestcard's number of transactions."""

    org_id: uuid.UUID
    profile: dict[str, float]
    write_tx: int = DEFAULT_WRITE_TX
    statements: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.events = max(1, round(self.profile.get("lead_events", 3)))
        self.identities = max(0, round(self.profile.get("contact_identities", 2)))
        self.tasks = max(0, round(self.profile.get("tasks", 0)))
        self.applications = round(self.profile.get("signal_applications", 1))

    async def receive(self, connection: asyncpg.Connection, body: dict[str, Any]) -> uuid.UUID:
        """The webhook's transaction: the raw payload into the inbox."""
        inbound_id = uuid.uuid4()
        raw = json.dumps(body).encode()
        now = datetime.now(UTC)
        await connection.execute(
            "INSERT INTO inbound_messages (id, org_id, kind, delivery_key, content_type, headers, query, body, "
            "body_size, received_at, status, attempts, created_at, updated_at) VALUES ($1, $2, 'web-form', $3, "
            "'application/json', '{}'::jsonb, '{}'::jsonb, $4, $5, $6, 'received', 0, $6, $6) "
            "ON CONFLICT (org_id, delivery_key) DO NOTHING",
            inbound_id, self.org_id, f"web-form:{body['submission_id']}", raw, len(raw), now,
        )  # fmt: skip
        return inbound_id

    async def retire(self, pool: asyncpg.Pool) -> None:
        """After the timed work: the rows the floor left `received` (its accept, or its one transaction, has no
        worker to finish them) are set aside. Left as they were, guestcard's sweep took them two minutes later and
        applied them during the next scenario's or round's guestcard side (sessions 16-17: intake rounds 4-5 ran at
        a third of their speed, applying the floor's rows of rounds 1-3 beside their own)."""
        async with pool.acquire() as connection:
            await connection.execute(
                "UPDATE inbound_messages SET status = 'ignored', reason = 'bench floor: not guestcard''s to apply' "
                "WHERE org_id = $1 AND status = 'received'",
                self.org_id,
            )

    async def process(self, connection: asyncpg.Connection, inbound_id: uuid.UUID, body: dict[str, Any]) -> None:
        """Everything after the 2xx: the remaining transactions of guestcard's count, same rows."""
        middle = max(0, self.write_tx - 3)
        for _ in range(middle):  # e.g. the worker claiming the row (attempts + 1)
            async with connection.transaction():
                await connection.execute(
                    "UPDATE inbound_messages SET attempts = attempts + 1 WHERE id = $1 AND status = 'received'",
                    inbound_id,
                )
        if self.write_tx >= 3:
            async with connection.transaction():
                contact_id, lead_id = await self._lead_rows(connection, inbound_id, body)
            async with connection.transaction():
                await self._finish(connection, inbound_id, contact_id, lead_id)
        else:
            async with connection.transaction():
                contact_id, lead_id = await self._lead_rows(connection, inbound_id, body)
                await self._finish(connection, inbound_id, contact_id, lead_id)

    async def one(self, connection: asyncpg.Connection, body: dict[str, Any]) -> None:
        if self.write_tx <= 1:  # the physical floor: every row of the lead in one transaction, one write each
            async with connection.transaction():
                inbound_id = await self.receive(connection, body)
                await self._lead_rows(connection, inbound_id, body)
            return
        inbound_id = await self.receive(connection, body)
        await self.process(connection, inbound_id, body)

    async def _lead_rows(
        self, connection: asyncpg.Connection, inbound_id: uuid.UUID, body: dict[str, Any]
    ) -> tuple[uuid.UUID, uuid.UUID]:
        now = datetime.now(UTC)
        contact_id, lead_id = uuid.uuid4(), uuid.uuid4()
        await connection.execute(
            "INSERT INTO contacts (id, org_id, kind, full_name, first_name, last_name, primary_email, primary_phone, "
            "created_at, updated_at) VALUES ($1, $2, 'tenant', $3, $4, $5, $6, $7, $8, $8)",
            contact_id, self.org_id, f"{body['first_name']} {body['last_name']}", body["first_name"],
            body["last_name"], body["email"], body["phone"], now,
        )  # fmt: skip
        identities = [("email", body["email"]), ("phone", body["phone"])][: self.identities]
        for kind, value in identities:
            await connection.execute(
                "INSERT INTO contact_identities (id, org_id, contact_id, kind, value, source, created_at, updated_at) "
                "VALUES ($1, $2, $3, $4, $5, 'website', $6, $6) ON CONFLICT (org_id, kind, value) DO NOTHING",
                uuid.uuid4(), self.org_id, contact_id, kind, value, now,
            )  # fmt: skip
        await connection.execute(
            "INSERT INTO leads (id, org_id, contact_id, kind, status, temperature, source, latest_source, "
            "next_action_type, next_action_due_at, last_touch_at, created_at, updated_at) VALUES "
            "($1, $2, $3, 'tenant', 'tour_requested', 'hot', 'website', 'website', 'schedule_tour', $4, $4, $4, $4) "
            "ON CONFLICT DO NOTHING",
            lead_id, self.org_id, contact_id, now,
        )  # fmt: skip
        for index in range(self.events):
            await connection.execute(
                "INSERT INTO lead_events (id, org_id, lead_id, contact_id, type, occurred_at, recorded_at, actor_type, "
                "source, channel, inbound_id, data) VALUES ($1, $2, $3, $4, $5, $6, $6, 'system', 'website', 'web', "
                "$7, $8::jsonb)",
                uuid.uuid4(), self.org_id, lead_id, contact_id, EVENT_TYPES[index % 3], now, inbound_id,
                '{"message": "Hi! Is the 2 bedroom still available?"}',
            )  # fmt: skip
        for _ in range(self.tasks):
            await connection.execute(
                "INSERT INTO tasks (id, org_id, lead_id, type, title, status, due_at, created_at, updated_at) "
                "VALUES ($1, $2, $3, 'call', 'Call back', 'open', $4, $4, $4)",
                uuid.uuid4(), self.org_id, lead_id, now,
            )  # fmt: skip
        if self.applications:
            await connection.execute(
                "INSERT INTO signal_applications (inbound_id, org_id, contact_id, lead_id, created, contact_created, "
                "applied_at) VALUES ($1, $2, $3, $4, true, true, $5) ON CONFLICT DO NOTHING",
                inbound_id, self.org_id, contact_id, lead_id, now,
            )  # fmt: skip
        return contact_id, lead_id

    async def _finish(
        self, connection: asyncpg.Connection, inbound_id: uuid.UUID, contact_id: uuid.UUID, lead_id: uuid.UUID
    ) -> None:
        await connection.execute(
            "UPDATE inbound_messages SET status = 'processed', processed_at = now(), lead_id = $2, contact_id = $3, "
            "parser = 'web_form', source = 'website', signal = $4::jsonb, match = $5::jsonb "
            "WHERE id = $1 AND status = 'received'",
            inbound_id, lead_id, contact_id, '{"event": "tour_request", "channel": "web"}', '{"verdict": "new"}',
        )  # fmt: skip


async def run_pool(pool: asyncpg.Pool, count: int, work: Callable[[asyncpg.Connection, int], Awaitable[None]]) -> None:
    """`count` units of work over the pool, one connection per unit, as many in flight as the pool allows."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(count):
        queue.put_nowait(index)

    async def worker() -> None:
        while True:
            try:
                index = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            async with pool.acquire() as connection:
                await work(connection, index)

    await asyncio.gather(*(worker() for _ in range(pool.get_max_size())))


@dataclass
class FirstReplies:
    """The renter's side of an organization's leads: webhook stored → first automated reply accepted by the
    provider (PostgreSQL's `received_at` and `first_automated_response_at`)."""

    waiting: int  # leads without their reply yet
    p50_ms: float
    p99_ms: float
    span_s: float | None  # first webhook stored → the last reply sent (None while any waits)


async def first_replies(pool: Any, org_id: uuid.UUID, limit_s: float) -> FirstReplies:
    """Once every lead of the organization has its first reply, or `limit_s` passed. Waiting for them also keeps
    one round's sends out of the next round."""
    deadline = time.perf_counter() + limit_s
    async with pool.acquire() as connection:
        while True:
            row = await connection.fetchrow(
                "SELECT count(*) FILTER (WHERE l.first_automated_response_at IS NULL) AS waiting,"
                " percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP (ORDER BY"
                "  EXTRACT(EPOCH FROM l.first_automated_response_at - im.received_at) * 1000) AS ms,"
                " EXTRACT(EPOCH FROM max(l.first_automated_response_at) - min(im.received_at)) AS span"
                " FROM inbound_messages im JOIN leads l ON l.id = im.lead_id WHERE im.org_id = $1",
                org_id,
            )
            if row["waiting"] == 0 or time.perf_counter() > deadline:
                break
            await asyncio.sleep(0.1)
    p50, p99 = row["ms"] or (0.0, 0.0)
    span = float(row["span"]) if row["waiting"] == 0 and row["span"] is not None else None
    return FirstReplies(row["waiting"], p50, p99, span)
