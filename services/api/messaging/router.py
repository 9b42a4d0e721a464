"""Messaging endpoints: lead messages, agent sends, providers, settings, templates, consent, notifications,
the Twilio status callback and the one-click unsubscribe."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response, status
from fastapi.responses import HTMLResponse
from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert

from services.api.deps import AdminDep, ManagerDep, PrincipalDep, SessionDep, StateDep
from services.api.leads.deps import LeadDep, LockedLeadDep
from services.api.leads.docs import problem_doc
from services.api.messaging import callbacks, service
from services.api.messaging.outbox import UNSUBSCRIBE_PURPOSE
from services.api.messaging.schemas import (
    ChannelName,
    ConsentChange,
    ConsentImport,
    ConsentImportResult,
    ConsentOut,
    MessageCreate,
    MessageOut,
    MessagePage,
    MessagingSettingsIn,
    MessagingSettingsOut,
    NotificationOut,
    NotificationPage,
    PreferenceIn,
    PreferenceList,
    PreviewIn,
    PreviewOut,
    ProviderOut,
    RecordConfig,
    SmtpConfig,
    TemplateIn,
    TemplateList,
    TemplateOut,
    TemplateUpdate,
    TwilioConfig,
)
from services.api.messaging.templates import VARIABLES
from services.api.owners.scope import ensure_contact_in_scope, ensure_in_scope
from shared import clock
from shared.errors import Conflict, NotFound, Unauthorized, ValidationFailed
from shared.models import MessageTemplate, MessagingProvider, MessagingSettings, NotificationPreference, Organization
from shared.service_token import resolve_secret_key
from shared.signing import BadToken, verify

router = APIRouter(tags=["messaging"])


# --- lead messages ---------------------------------------------------------------------------------------
@router.get("/v1/leads/{lead_id}/messages", response_model=MessagePage)
async def list_lead_messages(
    lead: LeadDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
) -> MessagePage:
    """The lead's outbox, newest first: channel, direction, status, reason, template and timestamps."""
    items, next_cursor = await service.lead_messages(session, lead, limit, cursor)
    return MessagePage(items=[MessageOut.model_validate(item) for item in items], next_cursor=next_cursor)


@router.post("/v1/leads/{lead_id}/messages", response_model=MessageOut, status_code=status.HTTP_201_CREATED)
async def send_lead_message(
    body: MessageCreate,
    lead: LockedLeadDep,
    principal: PrincipalDep,
    session: SessionDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=120)] = None,
) -> MessageOut:
    """A person writes to the renter (template or free text). Counts as the first human response once sent.
    Queued even in quiet hours, with `warning: quiet_hours`; an opted-out channel is `suppressed: opted_out`."""
    message = await service.agent_send(
        session,
        lead,
        user_id=principal.user_id,
        channel=body.channel,
        template=body.template,
        body=body.body,
        subject=body.subject,
        variables=body.variables,
        idempotency_key=f"{lead.id}:{idempotency_key}" if idempotency_key else None,
    )
    return MessageOut.model_validate(message)


# --- providers -------------------------------------------------------------------------------------------
def _provider_out(row: MessagingProvider) -> ProviderOut:
    return ProviderOut(
        channel=row.channel,  # type: ignore[arg-type]
        provider=row.provider,
        config=dict(row.config),
        secrets_set=sorted(row.secret_values()),
        updated_at=row.updated_at,
    )


@router.get("/v1/integrations/messaging/{channel}", response_model=ProviderOut, tags=["integrations"])
async def get_messaging_provider(channel: ChannelName, principal: ManagerDep, session: SessionDep) -> ProviderOut:
    """The channel's sender without its secrets (404: not configured, the `record` provider sends nothing)."""
    for row in await service.list_providers(session, principal.org_id):
        if row.channel == channel:
            return _provider_out(row)
    raise NotFound("No provider is set for this channel.")


@router.put("/v1/integrations/messaging/{channel}", response_model=ProviderOut, tags=["integrations"])
async def set_messaging_provider(
    channel: ChannelName,
    body: TwilioConfig | SmtpConfig | RecordConfig,
    principal: AdminDep,
    session: SessionDep,
) -> ProviderOut:
    """sms: `twilio` or `record`; email: `smtp` or `record`. Secrets (auth_token, password) are never returned."""
    row = await service.set_provider(session, principal.org_id, channel, body.model_dump())
    return _provider_out(row)


@router.delete("/v1/integrations/messaging/{channel}", status_code=status.HTTP_204_NO_CONTENT, tags=["integrations"])
async def remove_messaging_provider(channel: ChannelName, principal: AdminDep, session: SessionDep) -> Response:
    result = await session.execute(
        delete(MessagingProvider)
        .where(MessagingProvider.org_id == principal.org_id, MessagingProvider.channel == channel)
        .returning(MessagingProvider.channel)
    )
    if result.first() is None:
        raise NotFound("No provider is set for this channel.")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/v1/messaging/settings", response_model=MessagingSettingsOut)
async def get_messaging_settings(principal: PrincipalDep, session: SessionDep) -> MessagingSettingsOut:
    row = await session.get(MessagingSettings, principal.org_id)
    return MessagingSettingsOut.model_validate(row) if row else MessagingSettingsOut()


@router.put("/v1/messaging/settings", response_model=MessagingSettingsOut)
async def put_messaging_settings(
    body: MessagingSettingsIn, principal: AdminDep, session: SessionDep
) -> MessagingSettingsOut:
    """HELP text, the Reply-To inbound address, quiet hours (default 09:00–20:00 local) and the sensitive SLA."""
    from services.api.messaging.quiet_hours import allowed_hours

    if body.quiet_hours is not None:
        try:
            allowed_hours(body.quiet_hours)
        except ValueError as error:
            raise ValidationFailed(
                "quiet_hours is not a valid weekly schedule.",
                errors=[{"field": "body.quiet_hours", "message": str(error)[:300]}],
            ) from error
    values = body.model_dump()
    statement = insert(MessagingSettings).values(org_id=principal.org_id, **values)
    await session.execute(
        statement.on_conflict_do_update(index_elements=["org_id"], set_={**values, "updated_at": clock.now()})
    )
    return MessagingSettingsOut.model_validate(values)


# --- templates -------------------------------------------------------------------------------------------
@router.get("/v1/templates", response_model=TemplateList, tags=["templates"])
async def list_templates(principal: PrincipalDep, session: SessionDep) -> TemplateList:
    rows = await session.scalars(
        select(MessageTemplate)
        .where(MessageTemplate.org_id == principal.org_id)
        .order_by(MessageTemplate.key, MessageTemplate.channel, MessageTemplate.created_at)
    )
    return TemplateList(items=[TemplateOut.model_validate(row) for row in rows], variables=list(VARIABLES))


@router.post(
    "/v1/templates",
    response_model=TemplateOut,
    status_code=status.HTTP_201_CREATED,
    tags=["templates"],
    responses=problem_doc(409),
)
async def create_template(body: TemplateIn, principal: ManagerDep, session: SessionDep) -> TemplateOut:
    """An unknown `{{variable}}` is a 422 naming it; an SMS body over 10 segments is a 422."""
    await service.check_template(session, principal.org_id, body.model_dump())
    item = MessageTemplate(id=uuid.uuid4(), org_id=principal.org_id, **body.model_dump())
    session.add(item)
    try:
        async with session.begin_nested():
            await session.flush()
    except Exception as error:
        if "uq_message_templates_key" in str(error):
            raise Conflict("A template with this key, channel and property exists.") from error
        raise
    return TemplateOut.model_validate(item)


@router.get("/v1/templates/{template_id}", response_model=TemplateOut, tags=["templates"])
async def get_template(template_id: uuid.UUID, principal: PrincipalDep, session: SessionDep) -> TemplateOut:
    return TemplateOut.model_validate(await service.get_template(session, principal.org_id, template_id))


@router.patch("/v1/templates/{template_id}", response_model=TemplateOut, tags=["templates"])
async def update_template(
    template_id: uuid.UUID, body: TemplateUpdate, principal: ManagerDep, session: SessionDep
) -> TemplateOut:
    item = await service.get_template(session, principal.org_id, template_id)
    changes = body.model_dump(exclude_unset=True)
    if changes.get("body") is None:
        changes.pop("body", None)
    await service.check_template(session, principal.org_id, {"channel": item.channel, **changes})
    for key, value in changes.items():
        setattr(item, key, value)
    item.updated_at = clock.now()
    await session.flush()
    return TemplateOut.model_validate(item)


@router.delete("/v1/templates/{template_id}", status_code=status.HTTP_204_NO_CONTENT, tags=["templates"])
async def delete_template(template_id: uuid.UUID, principal: ManagerDep, session: SessionDep) -> Response:
    item = await service.get_template(session, principal.org_id, template_id)
    await session.delete(item)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/v1/templates/{template_id}/preview", response_model=PreviewOut, tags=["templates"])
async def preview_template(
    template_id: uuid.UUID, body: PreviewIn, principal: PrincipalDep, session: SessionDep
) -> PreviewOut:
    """The rendered text (from a lead, or placeholders), and for SMS its encoding and segment count."""
    item = await service.get_template(session, principal.org_id, template_id)
    if body.lead_id is not None:
        await ensure_in_scope(session, principal, body.lead_id)  # another agent's renter: 404
    return PreviewOut(**await service.template_preview(session, principal.org_id, item, body.lead_id, body.variables))


# --- consent ---------------------------------------------------------------------------------------------
@router.get(
    "/v1/contacts/{contact_id}/consent", response_model=ConsentOut, tags=["consent"], responses=problem_doc(410)
)
async def get_consent(contact_id: uuid.UUID, principal: PrincipalDep, session: SessionDep) -> ConsentOut:
    """Latest state per channel and every opt-in / opt-out with its source (sms_keyword, unsubscribe_link,
    agent, import)."""
    await ensure_contact_in_scope(session, principal, contact_id)
    return ConsentOut.model_validate(await service.consent_view(session, principal.org_id, contact_id))


@router.post(
    "/v1/contacts/{contact_id}/consent", response_model=ConsentOut, tags=["consent"], responses=problem_doc(410)
)
async def change_consent(
    contact_id: uuid.UUID, body: ConsentChange, principal: PrincipalDep, session: SessionDep
) -> ConsentOut:
    """An agent records what the renter told them."""
    await ensure_contact_in_scope(session, principal, contact_id)
    await service.agent_consent(
        session, principal.org_id, contact_id, body.channel, body.state, body.note, principal.user_id
    )
    return ConsentOut.model_validate(await service.consent_view(session, principal.org_id, contact_id))


@router.post("/v1/consent/import", response_model=ConsentImportResult, tags=["consent"])
async def import_consent(body: ConsentImport, principal: ManagerDep, session: SessionDep) -> ConsentImportResult:
    """Opt-ins and opt-outs from another system, by phone or email (bound to the contact when known)."""
    org = await session.get(Organization, principal.org_id)
    country = org.default_country if org else "US"
    return ConsentImportResult(**await service.import_consent(session, principal.org_id, body.rows, country))


@router.get("/v1/unsubscribe/{token}", response_class=HTMLResponse, tags=["consent"])
async def unsubscribe_page(token: str, state: StateDep, session: SessionDep) -> HTMLResponse:
    """The link in every renter email: one visit unsubscribes (also RFC 8058 one-click by POST)."""
    await _unsubscribe(token, state, session)
    return HTMLResponse("<!doctype html><title>Unsubscribed</title><p>You will receive no more email from us.</p>")


@router.post("/v1/unsubscribe/{token}", status_code=status.HTTP_204_NO_CONTENT, tags=["consent"])
async def unsubscribe_one_click(token: str, state: StateDep, session: SessionDep) -> Response:
    """`List-Unsubscribe-Post: List-Unsubscribe=One-Click` target."""
    await _unsubscribe(token, state, session)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


async def _unsubscribe(token: str, state: StateDep, session: SessionDep) -> None:
    from services.api.messaging.consent import latest_consent, record_consent

    try:
        payload = verify(resolve_secret_key(state.settings), UNSUBSCRIBE_PURPOSE, token)
        org_id = uuid.UUID(payload["org"])
        contact_id = uuid.UUID(payload["contact"]) if payload.get("contact") else None
        address = str(payload["address"])
    except (BadToken, KeyError, ValueError) as error:
        raise NotFound("This unsubscribe link is not valid.") from error
    current = await latest_consent(session, org_id, "email", contact_id=contact_id, address=address)
    if current != "opted_out":
        await record_consent(
            session,
            org_id,
            channel="email",
            state="opted_out",
            source="unsubscribe_link",
            contact_id=contact_id,
            address=address,
        )


# --- notifications ---------------------------------------------------------------------------------------
def _user(principal: PrincipalDep) -> uuid.UUID:
    if principal.user_id is None:
        raise Unauthorized("Notifications belong to a user's key.")
    return principal.user_id


@router.get("/v1/notifications", response_model=NotificationPage, tags=["notifications"])
async def list_notifications(
    principal: PrincipalDep,
    session: SessionDep,
    unread: bool = False,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
) -> NotificationPage:
    """The caller's feed, newest first: new_lead, tour_request, question, offer, sla_breach,
    sensitive_conversation."""
    items, next_cursor, count = await service.notifications_page(
        session, principal.org_id, _user(principal), unread, limit, cursor
    )
    return NotificationPage(
        items=[NotificationOut.model_validate(item) for item in items], next_cursor=next_cursor, unread=count
    )


@router.post("/v1/notifications/{notification_id}/read", status_code=status.HTTP_204_NO_CONTENT, tags=["notifications"])
async def read_notification(notification_id: uuid.UUID, principal: PrincipalDep, session: SessionDep) -> Response:
    await service.mark_read(session, principal.org_id, _user(principal), notification_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/v1/notifications/read-all", status_code=status.HTTP_204_NO_CONTENT, tags=["notifications"])
async def read_all_notifications(principal: PrincipalDep, session: SessionDep) -> Response:
    await service.mark_read(session, principal.org_id, _user(principal), None)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/v1/notifications/preferences", response_model=PreferenceList, tags=["notifications"])
async def get_preferences(principal: PrincipalDep, session: SessionDep) -> PreferenceList:
    """Per kind: feed and email (a kind not listed has both on)."""
    rows = await session.scalars(
        select(NotificationPreference)
        .where(NotificationPreference.user_id == _user(principal), NotificationPreference.org_id == principal.org_id)
        .order_by(NotificationPreference.kind)
    )
    return PreferenceList(items=[PreferenceIn(kind=row.kind, feed=row.feed, email=row.email) for row in rows])


@router.put("/v1/notifications/preferences", response_model=PreferenceList, tags=["notifications"])
async def put_preferences(body: PreferenceList, principal: PrincipalDep, session: SessionDep) -> PreferenceList:
    user_id = _user(principal)
    for item in body.items:
        statement = insert(NotificationPreference).values(
            org_id=principal.org_id, user_id=user_id, kind=item.kind, feed=item.feed, email=item.email
        )
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=["org_id", "user_id", "kind"],
                set_={"feed": item.feed, "email": item.email, "updated_at": clock.now()},
            )
        )
    return await get_preferences(principal, session)


# --- Twilio status callback ------------------------------------------------------------------------------
@router.post(
    "/v1/messaging/twilio/status/{message_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    tags=["messaging"],
)
async def twilio_status_callback(
    message_id: uuid.UUID, request: Request, state: StateDep, session: SessionDep
) -> Response:
    """Twilio's StatusCallback for one of our messages (our id is in the URL); X-Twilio-Signature is checked
    with the organization's auth token before anything is read or stored."""
    await callbacks.twilio_status(session, state.settings, message_id, request)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
