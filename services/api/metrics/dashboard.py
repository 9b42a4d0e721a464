"""`/dashboard`: one server-rendered page over the metrics API's own functions (no JavaScript, no assets).

Sign-in: an API key (the form posts it once; the page then lives on a signed, HttpOnly, SameSite=Strict
cookie), or a short-lived signed link from `guestcard dashboard-link` (`?token=`, moved into the same cookie
and out of the address bar). Every number comes from the functions behind GET /v1/metrics/*, with the same
window and filters, so the page and the API agree; each number carries `data-metric` for tests.
"""

from __future__ import annotations

import html
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from services.api.auth.service import Principal, principal_for_key
from services.api.deps import SessionDep, StateDep
from services.api.metrics import queries
from services.api.metrics.cli import DASHBOARD_PURPOSE
from services.api.metrics.router import _window, funnel_rows, make_filter
from services.api.metrics.scope import lead_scope
from shared import clock, signing
from shared.enums import Role
from shared.models import ApiKey, Property
from shared.service_token import resolve_secret_key

router = APIRouter(include_in_schema=False)
COOKIE = "gc_dashboard"
SESSION_HOURS = 12
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


def _page(body: str, status: int = 200) -> HTMLResponse:
    document = (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width,initial-scale=1'>"
        f"<title>guestcard metrics</title><style>{CSS}</style></head><body>{body}</body></html>"
    )
    return HTMLResponse(document, status_code=status, headers=HEADERS)


def _login(message: str = "", status: int = 200) -> HTMLResponse:
    note = f"<p class=error>{html.escape(message)}</p>" if message else ""
    return _page(
        "<main class=login><h1>guestcard metrics</h1>"
        f"{note}<form method=post action='/dashboard/login'>"
        "<label>API key <input type=password name=api_key autocomplete=off required></label>"
        "<button type=submit>Sign in</button></form>"
        "<p class=hint>Or open a link made by <code>guestcard dashboard-link ORG_ID</code>.</p></main>",
        status,
    )


def _set_session(response: Response, request: Request, key: str, payload: dict[str, Any], expires: datetime) -> None:
    token = signing.sign(key, DASHBOARD_PURPOSE, payload, expires)
    response.set_cookie(
        COOKIE,
        token,
        max_age=max(1, int((expires - clock.now()).total_seconds())),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/dashboard",
    )


async def _principal(request: Request, session: Any, key: str) -> Principal | None:
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    try:
        payload = signing.verify(key, DASHBOARD_PURPOSE, token)
        org_id = uuid.UUID(str(payload["org"]))
        role = Role(payload.get("role", Role.manager))
    except (signing.BadToken, KeyError, ValueError):
        return None
    key_id = uuid.UUID(payload["key"]) if payload.get("key") else None
    if key_id is not None:  # signed in with a key: a revoked key ends the session
        revoked = await session.scalar(select(ApiKey.revoked_at).where(ApiKey.id == key_id, ApiKey.org_id == org_id))
        exists = await session.scalar(select(ApiKey.id).where(ApiKey.id == key_id))
        if exists is None or revoked is not None:
            return None
    user_id = uuid.UUID(payload["user"]) if payload.get("user") else None
    return Principal(org_id=org_id, role=role, key_id=key_id, user_id=user_id)


@router.post("/dashboard/login")
async def login(
    request: Request, state: StateDep, session: SessionDep, api_key: Annotated[str, Form(max_length=200)]
) -> Response:
    principal = await principal_for_key(session, api_key.strip())
    if principal is None:
        return _login("Unknown or revoked API key.", 401)
    response = RedirectResponse("/dashboard", status_code=303)
    payload = {"org": str(principal.org_id), "role": str(principal.role), "key": str(principal.key_id)}
    if principal.user_id:
        payload["user"] = str(principal.user_id)
    _set_session(
        response, request, resolve_secret_key(state.settings), payload, clock.now() + timedelta(hours=SESSION_HOURS)
    )
    return response


@router.post("/dashboard/logout")
async def logout() -> Response:
    response = RedirectResponse("/dashboard", status_code=303)
    response.delete_cookie(COOKIE, path="/dashboard")
    return response


@router.get("/dashboard", response_class=HTMLResponse)
async def dashboard(
    request: Request,
    state: StateDep,
    session: SessionDep,
    token: str | None = None,
    property_id: Annotated[str | None, Query(max_length=36)] = None,
    start: Annotated[str | None, Query(alias="from", max_length=32)] = None,
    end: Annotated[str | None, Query(alias="to", max_length=32)] = None,
) -> Response:
    key = resolve_secret_key(state.settings)
    if token:  # a signed link: move it into the cookie and out of the address bar (and of logs, history)
        try:
            payload = signing.verify(key, DASHBOARD_PURPOSE, token)
        except signing.BadToken:
            return _login("This link is not valid any more; ask for a new one.", 401)
        query = {k: v for k, v in request.query_params.items() if k != "token"}
        response = RedirectResponse("/dashboard" + (f"?{urlencode(query)}" if query else ""), status_code=303)
        _set_session(response, request, key, payload, clock.now() + timedelta(hours=SESSION_HOURS))
        return response
    principal = await _principal(request, session, key)
    if principal is None:
        return _login()
    properties = list(
        await session.execute(
            select(Property.id, Property.name, Property.timezone)
            .where(Property.org_id == principal.org_id, Property.is_archived.is_(False))
            .order_by(Property.name)
        )
    )
    chosen = _uuid(property_id)
    if chosen is not None and chosen not in {row.id for row in properties}:
        chosen = None
    try:
        window = _window(_day(start), _day(end, end_of_day=True))
    except Exception:  # a bad date is shown as the default window, never a 500
        window = _window(None, None)
    f = make_filter(principal, *window, await lead_scope(session, principal), property_id=chosen)
    funnel, funnel_totals = await funnel_rows(session, principal, f, "cohort", "source")
    speed_rows = await queries.response_time(session, f, "none")
    speed = speed_rows[0] if speed_rows else None
    attribution = await queries.attribution(session, f)
    health = await queries.health(session, f, queries.floor_minute(clock.now()))
    body = _render(properties, chosen, f, funnel, funnel_totals, speed, attribution, health)
    return _page(body)


def _uuid(value: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(value) if value else None
    except ValueError:
        return None


def _day(value: str | None, end_of_day: bool = False) -> datetime | None:
    """A date box (YYYY-MM-DD) is a UTC day; `to` includes its day. A full timestamp is taken as is."""
    if not value:
        return None
    if len(value) == 10:
        day = date.fromisoformat(value)
        moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
        return moment + timedelta(days=1) if end_of_day else moment
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _e(value: Any) -> str:
    return html.escape(str(value))


def _num(metric: str, value: Any, kind: str = "int") -> str:
    if value is None:
        shown = "–"
    elif kind == "rate":
        shown = f"{value * 100:.1f}%"
    elif kind == "money":
        shown = f"${value:,.2f}"
    elif kind == "seconds":
        shown = _duration(value)
    else:
        shown = f"{value:,}"
    raw = "" if value is None else value
    return f"<td class=num data-metric='{_e(metric)}' data-value='{_e(raw)}'>{_e(shown)}</td>"


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _render(
    properties: list[Any],
    chosen: uuid.UUID | None,
    f: queries.Filter,
    funnel: list[dict[str, Any]],
    funnel_totals: dict[str, Any],
    speed: dict[str, Any] | None,
    attribution: list[dict[str, Any]],
    health: dict[str, Any],
) -> str:
    options = "<option value=''>All properties</option>" + "".join(
        f"<option value='{row.id}'{' selected' if row.id == chosen else ''}>{_e(row.name)}</option>"
        for row in properties
    )
    last_day = (f.end - timedelta(microseconds=1)).date()
    parts = [
        "<header><h1>guestcard metrics</h1><form method=post action='/dashboard/logout'>"
        "<button class=link>Sign out</button></form></header>",
        "<form class=filters method=get action='/dashboard'>"
        f"<label>Property <select name=property_id id=property>{options}</select></label>"
        f"<label>From <input type=date name=from value='{f.start.date().isoformat()}'></label>"
        f"<label>To <input type=date name=to value='{last_day.isoformat()}'></label>"
        "<button type=submit id=apply>Show</button></form>",
        f"<p class=window id=window data-from='{f.start.isoformat()}' data-to='{f.end.isoformat()}' "
        f"data-property='{chosen or ''}'>Leads created {_e(f.start.strftime('%Y-%m-%d %H:%M'))} – "
        f"{_e(f.end.strftime('%Y-%m-%d %H:%M'))} UTC</p>",
    ]
    # funnel by source
    head = "".join(
        f"<th>{h}</th>"
        for h in (
            "Source",
            "Leads",
            "Contacted",
            "Toured",
            "Applied",
            "Leased",
            "Lead→tour",
            "Tour→app",
            "App→lease",
            "Lead→lease",
        )
    )
    rows = ""
    peak = max([row["leads"] for row in funnel] or [1])
    for row in [*funnel, {**funnel_totals, "key": "total"}]:
        k = row["key"]
        bar = f"<span class=bar style='width:{100 * row['leads'] / peak:.0f}%'></span>" if k != "total" else ""
        rows += (
            f"<tr{' class=total' if k == 'total' else ''}><th scope=row>{_e(k)}{bar}</th>"
            + "".join(_num(f"funnel.{k}.{n}", row[n]) for n in ("leads", "contacted", "toured", "applied", "leased"))
            + "".join(
                _num(f"funnel.{k}.{n}", row[n], "rate")
                for n in (
                    "lead_to_tour_rate",
                    "tour_to_application_rate",
                    "application_to_lease_rate",
                    "lead_to_lease_rate",
                )
            )
            + "</tr>"
        )
    parts.append(f"<section><h2>Funnel by source</h2><table id=funnel><tr>{head}</tr>{rows}</table></section>")
    # speed to lead
    if speed:
        buckets = list(queries.BUCKETS)
        head = (
            "<th>First reply</th><th>Replied</th><th>Median</th><th>p90</th><th>≤ 5 min</th><th>≤ 1 h</th>"
            + "".join(f"<th>{_e(name.replace('_', ' '))}</th>" for name, _, _ in buckets)
        )
        rows = ""
        for kind in queries.KINDS:
            block = speed[kind]
            rows += (
                f"<tr><th scope=row>{kind}</th>"
                + _num(f"speed.{kind}.responded", block["responded"])
                + _num(f"speed.{kind}.median_seconds", block["median_seconds"], "seconds")
                + _num(f"speed.{kind}.p90_seconds", block["p90_seconds"], "seconds")
                + _num(f"speed.{kind}.within_5_minutes_rate", block["within_5_minutes_rate"], "rate")
                + _num(f"speed.{kind}.within_1_hour_rate", block["within_1_hour_rate"], "rate")
                + "".join(_num(f"speed.{kind}.distribution.{n}", block["distribution"][n]) for n, _, _ in buckets)
                + "</tr>"
            )
        parts.append(
            f"<section><h2>Speed to lead ({speed['leads']} leads)</h2><table id=speed><tr>{head}</tr>{rows}</table>"
            "</section>"
        )
    # leases and cost by source
    head = "".join(
        f"<th>{h}</th>"
        for h in ("Source", "Leads", "Tours", "Leases", "Leases (last touch)", "Spend", "Cost/lead", "Cost/lease")
    )
    rows = ""
    for row in attribution:
        k = row["key"]
        rows += (
            f"<tr><th scope=row>{_e(k)}</th>"
            + "".join(_num(f"attribution.{k}.{n}", row[n]) for n in ("leads", "tours", "leases", "last_touch_leases"))
            + "".join(
                _num(f"attribution.{k}.{n}", row[n], "money") for n in ("spend", "cost_per_lead", "cost_per_lease")
            )
            + "</tr>"
        )
    parts.append(
        f"<section><h2>Leases and cost by source</h2><table id=attribution><tr>{head}</tr>{rows}</table></section>"
    )
    # health
    labels = {
        "open_leads": "Open leads",
        "no_owner": "No owner",
        "no_next_action": "No next action",
        "overdue_next_action": "Next action overdue",
        "sla_breaches": "SLA breaches",
        "offers_accepted": "Offers accepted",
        "offer_acceptance_median_seconds": "Offer acceptance (median)",
        "review_open": "Review queue",
        "review_oldest_age_seconds": "Oldest review",
        "duplicates_prevented": "Duplicates prevented",
        "anonymous_missed_calls": "Anonymous missed calls",
        "intake_lag_p50_seconds": "Intake lag p50 (last hour)",
        "intake_lag_p99_seconds": "Intake lag p99 (last hour)",
    }
    rows = "".join(
        f"<tr><th scope=row>{label}</th>"
        + _num(f"health.{name}", health[name], "seconds" if name.endswith("seconds") else "int")
        + "</tr>"
        for name, label in labels.items()
    )
    rows += "".join(
        f"<tr><th scope=row>Deliveries {_e(status)}</th>{_num(f'health.inbound_by_status.{status}', n)}</tr>"
        for status, n in sorted(health["inbound_by_status"].items())
    )
    parts.append(f"<section><h2>What is slipping</h2><table id=health>{rows}</table></section>")
    return "<main>" + "".join(parts) + "</main>"


CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
main{max-width:1100px;margin:0 auto;padding:16px}
header{display:flex;justify-content:space-between;align-items:center}
h1{font-size:20px;margin:8px 0}h2{font-size:16px;margin:0 0 8px}
section{background:#fff;border:1px solid #dde1e7;border-radius:6px;padding:12px;margin:12px 0;overflow-x:auto}
table{border-collapse:collapse;width:100%}th,td{padding:4px 8px;border-bottom:1px solid #eef0f3;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums}tr.total{font-weight:600}
th[scope=row]{position:relative;white-space:nowrap}
.bar{display:block;height:3px;background:#3b82f6;margin-top:2px}
.filters{display:flex;gap:12px;align-items:end;flex-wrap:wrap}.filters label{display:flex;flex-direction:column}
.window{color:#5b6473}.error{color:#b91c1c}.login{max-width:360px}.login label{display:block;margin:8px 0}
button.link{background:none;border:0;color:#3b82f6;cursor:pointer}
"""
