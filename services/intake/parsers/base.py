"""The parser contract: a stored raw delivery in, a LeadSignal (or a reasoned refusal) out.

Parsers are pure functions: no database, no network, no clock (the reference time comes in the input),
so the corpus tests can run them directly and a replay after a fix gives the same answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from shared.enums import InboundKind
from shared.schemas.signal import LeadSignal, PropertyHint


@dataclass(frozen=True, slots=True)
class RawInbound:
    """One delivery exactly as it was stored in inbound_messages."""

    kind: InboundKind
    body: bytes
    content_type: str
    received_at: datetime
    headers: dict[str, str] = field(default_factory=dict)  # lower-cased names
    query: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ParseContext:
    """What the organization configured that a parser may need."""

    default_country: str = "US"
    own_phones: frozenset[str] = frozenset()  # E.164 numbers of the org's properties
    own_emails: frozenset[str] = frozenset()  # inbound aliases / staff addresses
    # (kind, value) never-identity entries (blocklist + own numbers/aliases): shared.identity's one rule
    blocked: frozenset[tuple[str, str]] = frozenset()


class Outcome(StrEnum):
    signal = "signal"
    ignored = "ignored"
    failed = "failed"


@dataclass(frozen=True, slots=True)
class ParseResult:
    outcome: Outcome
    signal: LeadSignal | None = None
    reason: str | None = None
    parser: str | None = None  # which template/parser produced it, for ops
    # the property a delivery without a lead concerns (an anonymous missed call's tracking number), if known
    property: PropertyHint | None = None

    @classmethod
    def ok(cls, signal: LeadSignal, parser: str) -> ParseResult:
        return cls(Outcome.signal, signal=signal, parser=parser)

    @classmethod
    def ignored(cls, reason: str, parser: str | None = None, property: PropertyHint | None = None) -> ParseResult:
        return cls(Outcome.ignored, reason=reason, parser=parser, property=property)

    @classmethod
    def failed(cls, reason: str, parser: str | None = None) -> ParseResult:
        return cls(Outcome.failed, reason=reason, parser=parser)


class ParseError(Exception):
    """Raised inside a parser for input it cannot read; the dispatcher turns it into `failed`."""
