"""The intake worker's handoff. Service-token auth; not for front ends."""

from __future__ import annotations

from fastapi import APIRouter

from services.api.deps import ServiceDep, SessionDep
from services.api.signals.service import apply_signal
from shared.schemas.signal import SignalEnvelope, SignalOutcome

router = APIRouter(prefix="/v1/internal", tags=["internal"])


@router.post("/signals", response_model=SignalOutcome)
async def post_signal(envelope: SignalEnvelope, _: ServiceDep, session: SessionDep) -> SignalOutcome:
    """Apply a normalized lead signal. The same inbound id again returns the same outcome and changes nothing."""
    return await apply_signal(session, envelope)
