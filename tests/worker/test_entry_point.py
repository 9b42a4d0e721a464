"""One way to start the worker: `guestcard worker`. The `arq services.intake.worker.WorkerSettings` entry
point was removed (it read other settings than `guestcard worker` and built a worker without the Redis
reconnect loop); this pins that it stays gone and that `guestcard worker` gets every job and setting."""

from __future__ import annotations

from pathlib import Path

import pytest

import services.intake.worker as worker_module
from services.intake import jobs as intake_jobs
from services.intake.worker import HEALTH_CHECK_INTERVAL, ResilientWorker, build_worker
from shared.config import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_there_is_no_second_entry_point() -> None:
    assert not hasattr(worker_module, "WorkerSettings")
    for path in [ROOT / "README.md", ROOT / "Dockerfile", *sorted((ROOT / "docs").glob("*.md"))]:
        text = path.read_text()
        assert "arq services.intake" not in text, path


def test_guestcard_worker_gets_every_job_and_the_settings(settings: Settings) -> None:
    worker = build_worker(settings)
    assert isinstance(worker, ResilientWorker)
    assert set(worker.functions) >= {function.__name__ for function in intake_jobs.JOBS}
    assert {f"cron:{function.__name__}" for function in intake_jobs.CRON_JOBS} <= set(worker.functions)
    assert worker.queue_name == settings.queue_name
    assert worker.max_jobs == settings.worker_max_jobs
    assert worker.poll_delay_s == settings.worker_poll_delay
    assert worker.keep_result_s == 0
    assert worker.health_check_interval == HEALTH_CHECK_INTERVAL
    assert worker.health_check_key == settings.queue_name + ":health-check"  # what /readyz reads


def test_jobs_given_as_arq_functions_keep_their_settings_and_get_the_outage_retry(
    monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    from arq import func

    from services.intake.worker import MAX_TRIES, job_functions

    async def custom(ctx: dict[str, object]) -> str:
        return "ok"

    async def plain(ctx: dict[str, object]) -> str:
        return "ok"

    monkeypatch.setattr(
        intake_jobs, "JOBS", [*intake_jobs.JOBS, func(custom, name="custom", max_tries=3, timeout=7), plain]
    )
    jobs = {job.name: job for job in job_functions()}
    assert jobs["custom"].max_tries == 3 and jobs["custom"].timeout_s == 7
    assert jobs["plain"].max_tries == MAX_TRIES
    assert jobs["custom"].coroutine.__wrapped__ is custom  # type: ignore[attr-defined]
    assert jobs["plain"].coroutine.__wrapped__ is plain  # type: ignore[attr-defined]
