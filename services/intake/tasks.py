"""Job entry points. Each takes ids, owns its transaction, and is idempotent: arq may run a job twice."""

from __future__ import annotations

from typing import Any

from arq import Retry

from services.api.automation.jobs import drain_scheduled_actions
from services.api.imports.jobs import run_import
from services.api.messaging.jobs import send_due_messages, send_message
from services.api.owners.jobs import escalate_sla, expire_offers
from services.api.webhooks.jobs import deliver_webhooks, publish_events
from services.intake.pipeline import process_inbound, sweep_inbound


def backoff_seconds(job_try: int) -> float:
    """1, 2, 4 … capped at 5 min: a flaky API or database gets time to recover."""
    return float(min(300, 2 ** max(0, job_try - 1)))


async def heartbeat(ctx: dict[str, Any]) -> str:
    """A no-op job for readiness probes and tests of the queue path."""
    return "ok"


def retry_later(ctx: dict[str, Any]) -> Retry:
    return Retry(defer=backoff_seconds(int(ctx.get("job_try", 1))))


JOBS: list[Any] = [heartbeat, process_inbound]
CRON_JOBS: list[Any] = [sweep_inbound]
# automation: timed steps (sequences, reminders, time-triggered rules)
CRON_JOBS += [drain_scheduled_actions]

# integrations out (services/api/webhooks): after-commit jobs, and the same as crons to catch up
JOBS += [publish_events, deliver_webhooks, run_import]
CRON_JOBS += [publish_events, deliver_webhooks]
# owners: offer timeouts and SLA escalation (rows with a due time, drained with SKIP LOCKED)
CRON_JOBS += [expire_offers, escalate_sla]
# metrics: fold rollup deltas written by triggers into metric_counts
from services.api.metrics.rollups import metrics_compact  # noqa: E402

CRON_JOBS.append(metrics_compact)

# messaging (services/api/messaging/jobs.py): outbox sends; deferred / lost / stuck messages
JOBS += [send_message]
CRON_JOBS += [send_due_messages]

# units: the daily digest of newly available matching units, decided each quarter hour for renters whose
# local morning it is (services/api/units/digest_job.py)
from services.api.units.digest_job import unit_digests  # noqa: E402

CRON_JOBS.append(unit_digests)
