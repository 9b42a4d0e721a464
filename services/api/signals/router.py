"""The intake worker's handoff. Service-token auth; not for front ends."""

from __future__ import annotations

from fastapi import APIRouter

from services.api.deps import ServiceDep, SessionDep
from services.api.signals.batch import apply_signals
from services.api.signals.service import apply_signal
from shared.schemas.signal import SignalEnvelope, SignalOutcome, SignalResult

router = APIRouter(prefix="/v1/internal", tags=["internal"])


@router.post("/signals", response_model=SignalOutcome | list[SignalResult])
async def post_signal(
    envelope: SignalEnvelope | list[SignalEnvelope], _: ServiceDep, session: SessionDep
) -> SignalOutcome | list[SignalResult]:
    """Apply normalized lead signals. The same inbound id again returns the same outcome and changes nothing.

    One envelope: its outcome, or its problem. A list (the worker's batch): one transaction in which a bad
    signal fails alone, a list of results in the same order, each with the status the single form would answer.
    """
    if isinstance(envelope, list):
        return await apply_signals(session, envelope)
    return await apply_signal(session, envelope)
