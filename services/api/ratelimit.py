"""Rate limits per API key and per intake key, shared by every API process through Redis.

GCRA (the generic cell rate algorithm): one Redis key per limited credential holds the theoretical arrival
time; a request is allowed while it is no more than `burst` emission intervals ahead of now. One atomic
script per request (by its SHA, on a kept connection: shared/redis_calls.py), Redis's own clock so every API
process agrees. A Redis outage fails open: a limiter must never be the reason a renter's inquiry is refused.
"""

from __future__ import annotations

import hashlib
import math

from redis.asyncio import Redis

from shared.errors import TooManyRequests
from shared.logging import get_logger
from shared.redis_calls import Script, run_script

log = get_logger(__name__)

# KEYS[1] limiter key; ARGV[1] emission interval (µs); ARGV[2] burst. Returns 0 or µs to wait.
_GCRA = Script("""
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local new_tat = tat + interval
local ahead = new_tat - now
local limit = interval * burst
if ahead > limit then
  return ahead - limit
end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil(ahead / 1000) + 1)
return 0
""")


async def check(redis: Redis | None, scope: str, credential: str, per_second: float, burst: int) -> None:
    """Raise 429 with Retry-After when `credential` is over its rate; no-op when the limit is 0 (off)."""
    if redis is None or per_second <= 0 or burst <= 0:
        return
    name = f"guestcard:rl:{scope}:{hashlib.sha256(credential.encode()).hexdigest()[:32]}"
    interval = 1_000_000 / per_second
    try:
        wait_us = int(await run_script(redis, _GCRA, [name], [f"{interval:.3f}", str(burst)]))
    except Exception as error:
        log.warning("ratelimit.unavailable", scope=scope, error=type(error).__name__)
        return
    if wait_us > 0:
        retry_after = max(1, math.ceil(wait_us / 1_000_000))
        raise TooManyRequests(f"Rate limit of {per_second:g}/s for this key exceeded.", retry_after=retry_after)
