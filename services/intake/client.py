"""The worker's hop to the API: `POST /v1/internal/signals`, typed errors, one pooled keep-alive client.

`ApiUnavailable`: the API could not answer (network, timeout, 5xx): retry later. `ApiRefused`: it answered
4xx for the whole request: retrying the same body cannot help. Per-signal answers of a batch come back as
`SignalResult`s with their own status.
"""

from __future__ import annotations

import httpx

from shared.config import Settings
from shared.schemas.signal import SignalEnvelope, SignalResult
from shared.service_token import resolve_service_token

SIGNALS_PATH = "/v1/internal/signals"
# one process's jobs share these connections: HTTP/1.1 keep-alive, so a handoff costs no TCP handshake
POOL_CONNECTIONS = 32


class ApiUnavailable(Exception):
    """Network error, timeout or 5xx: nothing was decided; the same request later is safe (idempotent)."""


class ApiRefused(Exception):
    """A 4xx for the whole request, with the problem detail."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"api refused ({status}): {detail}")
        self.status = status
        self.detail = detail


def build_api_client(settings: Settings) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=POOL_CONNECTIONS, max_keepalive_connections=POOL_CONNECTIONS)
    return httpx.AsyncClient(
        base_url=settings.api_base_url(),
        headers={"Authorization": f"Bearer {resolve_service_token(settings)}"},
        timeout=httpx.Timeout(60.0, connect=2.0),  # a batch of 100 under a busy CPU; one signal takes ms
        limits=limits,
    )


async def post_signals(api: httpx.AsyncClient, envelopes: list[dict[str, object]]) -> list[SignalResult]:
    """Apply a batch (envelopes as JSON-ready dicts, already dumped once by the caller); results in order."""
    try:
        response = await api.post(SIGNALS_PATH, json=envelopes)
    except httpx.HTTPError as error:
        raise ApiUnavailable(type(error).__name__) from error
    if response.status_code >= 500:
        raise ApiUnavailable(str(response.status_code))
    if response.status_code >= 400:
        raise ApiRefused(response.status_code, problem_detail(response))
    return [SignalResult.model_validate(item) for item in response.json()]


def problem_detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return "no problem details"
    if isinstance(body, dict):
        return str(body.get("detail") or body.get("title") or "no problem details")
    return "no problem details"


__all__ = ["ApiRefused", "ApiUnavailable", "SignalEnvelope", "build_api_client", "post_signals"]
