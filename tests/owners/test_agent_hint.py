"""The renter's pick of agent on a web form travels as `agent_hint` in the signal."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from services.intake.parsers import Outcome, RawInbound, parse
from shared.enums import InboundKind


@pytest.mark.parametrize("field", ["agent", "agent_email", "preferred_agent", "Preferred Agent"])
def test_web_form_reads_the_agent_the_renter_picked(field: str) -> None:
    body = {"name": "Dana Reyes", "email": "dana@example.org", field: "bob@leasing.example"}
    raw = RawInbound(InboundKind.web_form, json.dumps(body).encode(), "application/json", datetime.now(UTC))
    result = parse(raw)
    assert result.outcome is Outcome.signal and result.signal is not None
    assert result.signal.agent_hint == "bob@leasing.example"


def test_no_pick_no_hint() -> None:
    body = {"name": "Dana Reyes", "email": "dana@example.org"}
    raw = RawInbound(InboundKind.web_form, json.dumps(body).encode(), "application/json", datetime.now(UTC))
    result = parse(raw)
    assert result.signal is not None and result.signal.agent_hint is None
