"""Signing secrets of the senders that sign their webhooks. Write-only: a secret is never returned."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert

from services.api.auth import cache as principal_cache
from services.api.deps import AdminDep, ManagerDep, SessionDep
from shared.errors import NotFound
from shared.models import Integration

router = APIRouter(prefix="/v1/integrations", tags=["integrations"])


class Provider(StrEnum):
    twilio = "twilio"  # auth token of the account (X-Twilio-Signature)
    mailgun = "mailgun"  # HTTP webhook signing key
    callrail = "callrail"  # company signing key (Signature header)
    webflow = "webflow"  # webhook secret (x-webflow-signature)
    ringcentral = "ringcentral"  # the subscription's verificationToken
    sendgrid = "sendgrid"  # the Inbound Parse security policy's public key (base64 DER); opt-in
    postmark = "postmark"  # `user:password` of the basic auth in the webhook URL; opt-in


class IntegrationSecret(BaseModel):
    model_config = ConfigDict(extra="forbid")
    signing_secret: str = Field(min_length=1, max_length=500, description="stored, never returned")


class IntegrationOut(BaseModel):
    provider: Provider
    configured: bool = True
    updated_at: datetime


class IntegrationList(BaseModel):
    items: list[IntegrationOut]


@router.get("", response_model=IntegrationList)
async def list_integrations(principal: ManagerDep, session: SessionDep) -> IntegrationList:
    """Providers with a secret set (only those; an absent provider is not configured)."""
    rows = (
        await session.execute(
            select(Integration.provider, Integration.updated_at)
            .where(Integration.org_id == principal.org_id)
            .order_by(Integration.provider)
        )
    ).all()
    return IntegrationList(
        items=[IntegrationOut(provider=Provider(row.provider), updated_at=row.updated_at) for row in rows]
    )


@router.put("/{provider}", status_code=status.HTTP_204_NO_CONTENT)
async def set_secret(provider: Provider, body: IntegrationSecret, principal: AdminDep, session: SessionDep) -> Response:
    statement = insert(Integration).values(
        org_id=principal.org_id, provider=provider.value, signing_secret=body.signing_secret
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["org_id", "provider"],
            set_={"signing_secret": statement.excluded.signing_secret, "updated_at": func.now()},
        )
    )
    principal_cache.invalidate_secret(session, principal.org_id, provider.value)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete("/{provider}", status_code=status.HTTP_204_NO_CONTENT)
async def remove_secret(provider: Provider, principal: AdminDep, session: SessionDep) -> Response:
    """After this, that sender's deliveries are refused with 401 (fail closed)."""
    result = await session.execute(
        delete(Integration)
        .where(Integration.org_id == principal.org_id, Integration.provider == provider.value)
        .returning(Integration.provider)
    )
    if result.first() is None:
        raise NotFound("This provider has no secret set.")
    principal_cache.invalidate_secret(session, principal.org_id, provider.value)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
