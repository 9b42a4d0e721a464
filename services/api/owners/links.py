"""The one-click offer link `/o/{token}`: GET shows a small page, only its POST buttons act.

A mail scanner or chat preview that fetches the link accepts nothing. The token is signed (shared.signing)
and names the offer; the offer's own state makes it single use (answered once, then a 409 page).
"""

from __future__ import annotations

import html
import uuid
from typing import Literal

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from services.api.deps import SessionDep, StateDep
from services.api.owners import offers
from shared import clock
from shared.errors import DomainError
from shared.models import Contact, Lead, LeadOffer, Property, User
from shared.service_token import resolve_secret_key
from shared.signing import BadToken, verify

router = APIRouter(tags=["owners"], include_in_schema=True)

PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><meta name="robots" content="noindex">
<title>{title}</title><style>body{{font-family:system-ui,sans-serif;max-width:28rem;margin:2rem auto;padding:0 1rem}}
button{{font-size:1.2rem;padding:.7rem 1.4rem;margin:.3rem}}</style></head><body><h1>{title}</h1>{body}</body></html>"""


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        PAGE.format(title=html.escape(title), body=body),
        status_code=status,
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )


def _offer_id(state: StateDep, token: str) -> uuid.UUID | None:
    try:
        payload = verify(resolve_secret_key(state.settings), offers.OFFER_PURPOSE, token)
        return uuid.UUID(str(payload["offer"]))
    except (BadToken, KeyError, ValueError):
        return None


@router.get("/o/{token}", response_class=HTMLResponse, include_in_schema=False)
async def offer_page(token: str, state: StateDep, session: SessionDep) -> HTMLResponse:
    offer_id = _offer_id(state, token)
    offer = await session.get(LeadOffer, offer_id) if offer_id else None
    if offer is None:
        return _page("Link not valid", "<p>This link is not valid or has expired.</p>", 404)
    row = (
        await session.execute(
            select(Contact.first_name, Property.name, User.name.label("agent"))
            .select_from(Lead)
            .join(Contact, Contact.id == Lead.contact_id)
            .outerjoin(Property, Property.id == Lead.property_id)
            .join(User, User.id == offer.user_id)
            .where(Lead.id == offer.lead_id)
        )
    ).first()
    who = (
        html.escape(f"{row.first_name or 'A renter'}" + (f" at {row.name}" if row and row.name else "")) if row else ""
    )
    if offer.status != "pending" or offer.expires_at <= clock.now():
        closed = offer.status if offer.status != "pending" else "expired"
        return _page("Offer closed", f"<p>This offer is {html.escape(closed)}.</p>")
    action = html.escape(f"/o/{token}")
    body = (
        f"<p>New lead for {html.escape(row.agent if row else '')}: <strong>{who}</strong>.</p>"
        f"<p>Answer by {offer.expires_at:%H:%M} UTC.</p>"
        f'<form method="post" action="{action}?action=accept"><button type="submit">ACCEPT</button></form>'
        f'<form method="post" action="{action}?action=decline"><button type="submit">DECLINE</button></form>'
    )
    return _page("New lead offered to you", body)


@router.post("/o/{token}", response_class=HTMLResponse, include_in_schema=False)
async def offer_answer(
    token: str, state: StateDep, session: SessionDep, action: Literal["accept", "decline"]
) -> HTMLResponse:
    offer_id = _offer_id(state, token)
    found = await session.get(LeadOffer, offer_id) if offer_id else None
    if found is None:
        return _page("Link not valid", "<p>This link is not valid or has expired.</p>", 404)
    try:
        lead, offer = await offers.load_offer_for(session, None, found.org_id, found.id)
        if action == "accept":
            await offers.accept(session, lead, offer, clock.now())
            await session.flush()
            return _page("Accepted", "<p>The lead is yours.</p>")
        await offers.decline(session, lead, offer, clock.now(), "declined by link")
        await session.flush()
        return _page("Declined", "<p>The lead goes to the next agent.</p>")
    except DomainError as error:
        return _page("Not possible", f"<p>{html.escape(error.detail)}</p>", error.status)
