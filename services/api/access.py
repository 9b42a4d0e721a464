"""The role matrix: who may call each route, as data.

One entry per method and path of the app's route table. `tests/security/test_role_matrix.py` calls every route
with every kind of caller and fails on any difference (and on a route without an entry); `docs/access.md` is
rendered from this table (`make access-doc`). The routes' own dependencies enforce it (`services.api.deps`);
which rows an allowed agent then sees is the owners' scope (`services.api.owners.scope`), not this table.
"""

from __future__ import annotations

import copy
import sys
from enum import StrEnum
from typing import Any


class Caller(StrEnum):
    none = "no key"
    intake = "intake key"
    service = "service token"
    agent = "agent"
    manager = "manager"
    admin = "admin"


class Gate(StrEnum):
    """What lets a caller in, when it is not a role."""

    public = "public"  # anyone, no credential (health, docs, the dashboard's sign-in page)
    link = "link"  # a credential in the URL or a provider's signature; no API key opens it


Who = frozenset[Caller] | Gate

KEYS: frozenset[Caller] = frozenset({Caller.agent, Caller.manager, Caller.admin})  # any API key; agents see their scope
MANAGERS: frozenset[Caller] = frozenset({Caller.manager, Caller.admin})
ADMINS: frozenset[Caller] = frozenset({Caller.admin})
SERVICE: frozenset[Caller] = frozenset({Caller.service})
INTAKE: frozenset[Caller] = frozenset({Caller.intake})
PUBLIC: Who = Gate.public
LINK: Who = Gate.link

MATRIX: dict[str, Who] = {
    # operations and documents
    "GET /healthz": PUBLIC,
    "GET /readyz": PUBLIC,
    "GET /metrics": PUBLIC,  # Prometheus text without organization ids; firewall it like any scrape target
    "GET /openapi.json": PUBLIC,
    "GET /docs": PUBLIC,
    "GET /docs/oauth2-redirect": PUBLIC,
    "GET /redoc": PUBLIC,
    "GET /dashboard": PUBLIC,  # the sign-in page without a session cookie; its data needs a key or a link
    "POST /dashboard/login": PUBLIC,  # the API key is the form's field
    "POST /dashboard/logout": PUBLIC,
    # keys, users, secrets
    "GET /v1/me": KEYS,
    "GET /v1/api-keys": ADMINS,
    "POST /v1/api-keys": ADMINS,
    "DELETE /v1/api-keys/{key_id}": ADMINS,
    "POST /v1/intake-key/rotate": ADMINS,
    "POST /v1/users": ADMINS,
    "GET /v1/users": KEYS,
    "PATCH /v1/users/{user_id}": KEYS,  # agents: their own name, phone, away time (docs/owners.md)
    "POST /v1/users/{user_id}/reassign": MANAGERS,
    "GET /v1/users/{user_id}/calendar-link": KEYS,  # agents: their own
    "GET /v1/users/{user_id}/calendar.ics": LINK,
    "GET /v1/integrations": MANAGERS,
    "PUT /v1/integrations/{provider}": ADMINS,
    "DELETE /v1/integrations/{provider}": ADMINS,
    "GET /v1/integrations/messaging/{channel}": MANAGERS,
    "PUT /v1/integrations/messaging/{channel}": ADMINS,
    "DELETE /v1/integrations/messaging/{channel}": ADMINS,
    "GET /v1/messaging/settings": KEYS,
    "PUT /v1/messaging/settings": ADMINS,
    "POST /v1/webhooks": ADMINS,
    "GET /v1/webhooks": ADMINS,
    "GET /v1/webhooks/event-types": ADMINS,
    "GET /v1/webhooks/{endpoint_id}": ADMINS,
    "PATCH /v1/webhooks/{endpoint_id}": ADMINS,
    "DELETE /v1/webhooks/{endpoint_id}": ADMINS,
    "POST /v1/webhooks/{endpoint_id}/rotate-secret": ADMINS,
    "GET /v1/webhooks/{endpoint_id}/deliveries": ADMINS,
    "POST /v1/webhooks/{endpoint_id}/deliveries/{delivery_id}/replay": ADMINS,
    "GET /v1/events": MANAGERS,
    "GET /v1/audit": MANAGERS,
    # intake and the worker
    "POST /v1/intake/{intake_key}/{kind}": INTAKE,
    "POST /v1/internal/signals": SERVICE,
    "POST /v1/messaging/twilio/status/{message_id}": LINK,  # Twilio's signature
    "GET /v1/inbound": KEYS,
    "GET /v1/inbound/{inbound_id}": KEYS,
    "POST /v1/inbound/{inbound_id}/replay": MANAGERS,
    # properties, teams, strategies, tours setup, units
    "GET /v1/properties": KEYS,
    "POST /v1/properties": MANAGERS,
    "GET /v1/properties/{property_id}": KEYS,
    "PATCH /v1/properties/{property_id}": MANAGERS,
    "DELETE /v1/properties/{property_id}": MANAGERS,
    "GET /v1/properties/{property_id}/team": KEYS,
    "PUT /v1/properties/{property_id}/team": MANAGERS,
    "GET /v1/properties/{property_id}/assignment": KEYS,
    "PUT /v1/properties/{property_id}/assignment": MANAGERS,
    "GET /v1/assignment/default": KEYS,
    "PUT /v1/assignment/default": MANAGERS,
    "GET /v1/owners/settings": KEYS,
    "PATCH /v1/owners/settings": MANAGERS,
    "GET /v1/properties/{property_id}/tour-slots": KEYS,
    "GET /v1/properties/{property_id}/tour-settings": KEYS,
    "PUT /v1/properties/{property_id}/tour-settings": MANAGERS,
    "GET /v1/properties/{property_id}/tour-blackouts": KEYS,
    "POST /v1/properties/{property_id}/tour-blackouts": MANAGERS,
    "DELETE /v1/tour-blackouts/{blackout_id}": MANAGERS,
    "GET /v1/properties/{property_id}/floor-plans": KEYS,
    "POST /v1/properties/{property_id}/floor-plans": MANAGERS,
    "GET /v1/floor-plans/{plan_id}": KEYS,
    "PATCH /v1/floor-plans/{plan_id}": MANAGERS,
    "DELETE /v1/floor-plans/{plan_id}": MANAGERS,
    "GET /v1/units": KEYS,
    "POST /v1/units": MANAGERS,
    "POST /v1/units/import": MANAGERS,
    "GET /v1/units/{unit_id}": KEYS,
    "PATCH /v1/units/{unit_id}": MANAGERS,
    "DELETE /v1/units/{unit_id}": MANAGERS,
    # leads and the work on them (agents: within their scope)
    "GET /v1/leads": KEYS,
    "POST /v1/leads": KEYS,
    "GET /v1/leads/export.csv": KEYS,
    "POST /v1/leads/import": MANAGERS,
    "POST /v1/leads/invitations": KEYS,
    "GET /v1/leads/mits": KEYS,
    "GET /v1/leads/{lead_id}": KEYS,
    "PATCH /v1/leads/{lead_id}": KEYS,  # owner changes: managers (or agents with agents_can_reassign)
    "POST /v1/leads/{lead_id}/status": KEYS,
    "GET /v1/leads/{lead_id}/timeline": KEYS,
    "GET /v1/leads/{lead_id}/mits": KEYS,
    "POST /v1/leads/{lead_id}/notes": KEYS,
    "POST /v1/leads/{lead_id}/activities": KEYS,
    "POST /v1/leads/{lead_id}/tasks": KEYS,
    "GET /v1/leads/{lead_id}/tasks": KEYS,
    "GET /v1/tasks": KEYS,
    "PATCH /v1/tasks/{task_id}": KEYS,
    "POST /v1/leads/{lead_id}/tours": KEYS,
    "GET /v1/leads/{lead_id}/tours": KEYS,
    "GET /v1/tours/{tour_id}": KEYS,
    "GET /v1/tours/{tour_id}.ics": KEYS,
    "PATCH /v1/tours/{tour_id}": KEYS,
    "POST /v1/tours/{tour_id}/reschedule": KEYS,
    "POST /v1/tours/{tour_id}/cancel": KEYS,
    "GET /v1/leads/{lead_id}/matching-units": KEYS,
    "PATCH /v1/leads/{lead_id}/unit-criteria": KEYS,
    "GET /v1/leads/{lead_id}/next-action": KEYS,
    "GET /v1/leads/{lead_id}/automation-log": KEYS,
    "POST /v1/leads/{lead_id}/takeover": KEYS,
    "DELETE /v1/leads/{lead_id}/takeover": KEYS,
    "GET /v1/leads/{lead_id}/messages": KEYS,
    "POST /v1/leads/{lead_id}/messages": KEYS,
    "POST /v1/leads/{lead_id}/claim": KEYS,  # agents: pool leads of their properties
    "GET /v1/leads/{lead_id}/collaborators": KEYS,
    "PUT /v1/leads/{lead_id}/collaborators": KEYS,  # agents: on leads they own
    "GET /v1/offers": KEYS,  # agents: their own
    "POST /v1/offers/{offer_id}/accept": KEYS,
    "POST /v1/offers/{offer_id}/decline": KEYS,
    "GET /o/{token}": LINK,
    "POST /o/{token}": LINK,
    # contacts, identity, privacy
    "GET /v1/contacts/{contact_id}": KEYS,
    "PATCH /v1/contacts/{contact_id}": KEYS,  # correcting a renter's name, email or phone
    "DELETE /v1/contacts/{contact_id}": MANAGERS,  # erasure on request: irreversible
    "POST /v1/contacts/{contact_id}/merge": MANAGERS,
    "GET /v1/merges/{merge_id}": KEYS,
    "POST /v1/merges/{merge_id}/undo": MANAGERS,
    "GET /v1/review-items": KEYS,
    "GET /v1/review-items/{item_id}": KEYS,
    "POST /v1/review-items/{item_id}/resolve": MANAGERS,  # merges, and clearing a fair-housing flag
    "GET /v1/contacts/{contact_id}/consent": KEYS,
    "POST /v1/contacts/{contact_id}/consent": KEYS,
    "POST /v1/consent/import": MANAGERS,
    "GET /v1/unsubscribe/{token}": LINK,
    "POST /v1/unsubscribe/{token}": LINK,
    "GET /v1/unit-digest/stop/{token}": LINK,  # the signed link in a unit digest email (stops only the digest)
    "POST /v1/unit-digest/stop/{token}": LINK,
    "GET /v1/blocklist": MANAGERS,
    "POST /v1/blocklist": MANAGERS,
    "DELETE /v1/blocklist/{entry_id}": MANAGERS,
    # imports of the whole organization
    "POST /v1/imports": MANAGERS,
    "GET /v1/imports": MANAGERS,
    "GET /v1/imports/presets": MANAGERS,
    "GET /v1/imports/{import_id}": MANAGERS,
    "POST /v1/imports/{import_id}/undo": MANAGERS,
    # rules, labels, templates, messaging
    "GET /v1/automation/rules": KEYS,
    "PUT /v1/automation/rules": MANAGERS,
    "POST /v1/automation/rules/test": KEYS,
    "GET /v1/status-labels": KEYS,
    "POST /v1/status-labels": MANAGERS,
    "GET /v1/status-labels/{label_id}/action-plan": KEYS,
    "PUT /v1/status-labels/{label_id}/action-plan": MANAGERS,
    "GET /v1/templates": KEYS,
    "POST /v1/templates": MANAGERS,
    "GET /v1/templates/{template_id}": KEYS,
    "PATCH /v1/templates/{template_id}": MANAGERS,
    "DELETE /v1/templates/{template_id}": MANAGERS,
    "POST /v1/templates/{template_id}/preview": KEYS,
    "GET /v1/notifications": KEYS,  # each caller's own
    "POST /v1/notifications/{notification_id}/read": KEYS,
    "POST /v1/notifications/read-all": KEYS,
    "GET /v1/notifications/preferences": KEYS,
    "PUT /v1/notifications/preferences": KEYS,
    # metrics (agents: their own leads)
    "GET /v1/metrics/funnel": KEYS,
    "GET /v1/metrics/speed-to-lead": KEYS,
    "GET /v1/metrics/response-time": KEYS,
    "GET /v1/metrics/attribution": KEYS,
    "GET /v1/metrics/health": KEYS,
    "GET /v1/metrics/identity": KEYS,
    "GET /v1/sources/{source}/spend": KEYS,
    "PUT /v1/sources/{source}/spend": MANAGERS,
}


def allowed(who: Who, caller: Caller) -> bool:
    if who is Gate.public:
        return True
    if who is Gate.link:
        return False
    return caller in who


def document_refusals(spec: dict[str, Any]) -> dict[str, Any]:
    """Add the 403 to every operation some API key is refused by role, so the contract names it (idempotent)."""
    for path, operations in spec.get("paths", {}).items():
        for method, operation in operations.items():
            who = MATRIX.get(f"{method.upper()} {path}")
            if not isinstance(who, frozenset) or not who & KEYS or who >= KEYS:
                continue
            responses = operation.setdefault("responses", {})
            if "403" not in responses and "401" in responses:
                refusal = copy.deepcopy(responses["401"])
                refusal["description"] = "The API key's role may not do this: " + ", ".join(
                    caller.value for caller in Caller if caller in who
                )
                responses["403"] = refusal
    return spec


def render() -> str:
    """docs/access.md: the table above, one row per route."""
    callers = list(Caller)
    lines = [
        "# Access: who may call each route",
        "",
        "Rendered from `services/api/access.py` by `make access-doc`; `tests/security/test_role_matrix.py` calls",
        "every route of the app with each caller and fails on any difference, or on a route missing here.",
        "`yes` = the route answers this caller (agents then see only their scope: docs/owners.md); `-` = 401/403.",
        "`link`: the credential is in the URL (a signed token) or a provider's signature; no API key opens it.",
        "A role-gated operation declares its 403 in openapi.yaml (`document_refusals`); the intake URL answers an",
        "unknown intake key with 404 (docs/intake.md).",
        "",
        "| route | " + " | ".join(c.value for c in callers) + " |",
        "|---|" + "---|" * len(callers),
    ]
    for route, who in MATRIX.items():
        if who is Gate.link:
            cells = ["link"] * len(callers)
        else:
            cells = ["yes" if allowed(who, caller) else "-" for caller in callers]
        lines.append(f"| `{route}` | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
